"""The live view: paints the newest frame scaled to fit (aspect kept), optionally beside the original."""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QWidget


def to_qimage(rgb: np.ndarray) -> QImage:
    """Wrap an RGB uint8 array without copying (the caller keeps the array alive)."""
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)


def fit_rect(iw: int, ih: int, width: int, height: int) -> QRect:
    """Largest rect of the image's aspect centred in width×height."""
    scale = min(width / iw, height / ih)
    w, h = max(1, int(iw * scale)), max(1, int(ih * scale))
    return QRect((width - w) // 2, (height - h) // 2, w, h)


class FrameView(QWidget):
    doubleClicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.side_by_side = False
        self.displayed: Optional[np.ndarray] = None  # the frame on screen (snapshots save this)
        self._screen: Optional[np.ndarray] = None  # displayed, scaled to the widget, as BGRA
        self._image: Optional[QImage] = None
        self.message = ""

    def show_frame(self, original: np.ndarray, stylized: np.ndarray) -> None:
        self.displayed = np.ascontiguousarray(np.hstack([original, stylized])) if self.side_by_side else stylized
        self._prepare()
        self.update()

    def _prepare(self) -> None:
        """Scale with OpenCV and convert to the screen's 32-bit format once per frame, so painting
        is a plain blit (Qt's smooth scaling of RGB888 costs the model CPU time)."""
        if self.displayed is None:
            return
        ih, iw = self.displayed.shape[:2]
        r = fit_rect(iw, ih, self.width(), self.height())
        interp = cv2.INTER_AREA if r.width() < iw else cv2.INTER_LINEAR
        scaled = self.displayed if (r.width(), r.height()) == (iw, ih) else \
            cv2.resize(self.displayed, (r.width(), r.height()), interpolation=interp)
        self._screen = cv2.cvtColor(scaled, cv2.COLOR_RGB2BGRA)
        self._image = QImage(self._screen.data, r.width(), r.height(), self._screen.strides[0],
                             QImage.Format.Format_RGB32)

    def target_rect(self) -> QRect:
        if self._image is None:
            return self.rect()
        return fit_rect(self._image.width(), self._image.height(), self.width(), self.height())

    def resizeEvent(self, event) -> None:
        self._prepare()
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(20, 20, 24))
        if self._image is not None:
            p.drawImage(self.target_rect().topLeft(), self._image)
        if self.message:
            p.setPen(QColor(255, 220, 120))
            p.drawText(self.rect().adjusted(10, 10, -10, -10),
                       Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter, self.message)
        p.end()

    def mouseDoubleClickEvent(self, event) -> None:
        self.doubleClicked.emit()
