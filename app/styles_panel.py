"""Style gallery (thumbnail per style) and the blend / strength / colour controls."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QLabel, QListWidget, QListWidgetItem, QMenu,
                               QProgressBar, QPushButton, QSlider, QVBoxLayout, QWidget)

from engine.styles.catalog import StyleCatalog
from engine.styles.mix import StyleMix
from engine.live.thumbnails import THUMB_SIZE


def _slider(value: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(0, 100)
    s.setValue(value)
    return s


class StylesPanel(QWidget):
    """Emits ``changed`` whenever the style vector, strength or colour switch changes."""

    changed = Signal()
    removeRequested = Signal(int)  # a style id the user asked to delete (their own styles only)

    def __init__(self, catalog: StyleCatalog, style_a: int, style_b: int, blend: int, strength: int,
                 preserve_colors: bool, steady: bool = False, mask: str = "none", parent=None):
        super().__init__(parent)
        self.catalog = catalog
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListWidget.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(*THUMB_SIZE))
        self.gallery.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.gallery.setMovement(QListWidget.Movement.Static)
        self.gallery.setWordWrap(True)
        self.gallery.setGridSize(QSize(THUMB_SIZE[0] + 44, THUMB_SIZE[1] + 34))
        self.second = QComboBox()
        for s in catalog.styles:
            self._add_item(s)
        self.gallery.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.gallery.customContextMenuRequested.connect(self._context_menu)
        self.blend = _slider(blend)
        self.strength = _slider(strength)
        self.keep_colors = QCheckBox("Keep original colours")
        self.keep_colors.setChecked(preserve_colors)
        self.steady = QCheckBox("Steady video (less flicker)")
        self.layer = QComboBox()
        self.layer.addItem("the whole picture", "none")
        self.layer.addItem("only the person", "person")
        self.layer.addItem("only the background", "background")
        self.steady.setChecked(steady)
        self.layer.setCurrentIndex(max(self.layer.findData(mask), 0))
        self.add_button = QPushButton("Add style from a picture…")
        self.add_button.setToolTip("or drop a picture on the window")
        self.train_preview = QLabel()
        self.train_preview.hide()
        self.train_progress = QProgressBar()
        self.train_progress.hide()
        self.error = QLabel()
        self.error.setStyleSheet("color: #e06c75")
        self.error.setWordWrap(True)
        self.error.hide()

        form = QFormLayout()
        form.addRow("Blend with", self.second)
        form.addRow("Blend", self.blend)
        form.addRow("Strength", self.strength)
        form.addRow(self.keep_colors)
        form.addRow(self.steady)
        form.addRow("Stylize", self.layer)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Styles"))
        layout.addWidget(self.gallery, 1)
        layout.addLayout(form)
        layout.addWidget(self.add_button)
        layout.addWidget(self.train_preview)
        layout.addWidget(self.train_progress)
        layout.addWidget(self.error)

        self.gallery.setCurrentRow(style_a)
        self.second.setCurrentIndex(style_b)
        self.gallery.currentRowChanged.connect(lambda _: self.changed.emit())
        self.second.currentIndexChanged.connect(lambda _: self.changed.emit())
        for w in (self.blend, self.strength):
            w.valueChanged.connect(lambda _: self.changed.emit())
        self.keep_colors.toggled.connect(lambda _: self.changed.emit())
        self.steady.toggled.connect(lambda _: self.changed.emit())
        self.layer.currentIndexChanged.connect(lambda _: self.changed.emit())

    def is_own(self, style_id: int) -> bool:
        """The user's styles (picture styles and fitted rows) can be removed; stock ones cannot."""
        return self.catalog.is_own(style_id)

    def _context_menu(self, pos) -> None:
        item = self.gallery.itemAt(pos)
        if item is None:
            return
        style_id = item.data(Qt.ItemDataRole.UserRole)
        if not self.is_own(style_id):
            return
        menu = QMenu(self)
        action = menu.addAction(f"Remove style '{self.catalog.styles[style_id].name}'")
        if menu.exec(self.gallery.mapToGlobal(pos)) is action:
            self.removeRequested.emit(style_id)

    def _add_item(self, s) -> None:
        kind = self.catalog.family_of(s.id)
        item = QListWidgetItem(f"{s.id} · {s.name}")
        item.setToolTip(f"{s.name}\n{s.source} ({s.licence})" +
                        ("\npicture network (right-click to remove)" if kind == "picture" else
                         "\nright-click to remove" if self.is_own(s.id) else ""))
        item.setData(Qt.ItemDataRole.UserRole, s.id)
        self.gallery.addItem(item)
        self.second.addItem(f"{s.id} · {s.name}", s.id)

    def set_catalog(self, catalog: StyleCatalog) -> None:
        """Styles were added or removed: rebuild the gallery (thumbnails follow from the worker)."""
        self.catalog = catalog
        self.blockSignals(True)
        self.gallery.clear()
        self.second.clear()
        for s in catalog.styles:
            self._add_item(s)
        self.blockSignals(False)

    def set_thumbnail(self, style_id: int, path: str) -> None:
        if style_id >= self.gallery.count():
            return
        self.gallery.item(style_id).setIcon(QIcon(QPixmap(path)))

    @property
    def style_a(self) -> int:
        return max(self.gallery.currentRow(), 0)

    @property
    def style_b(self) -> int:
        return self.second.currentData()

    def select(self, style_id: int) -> None:
        self.gallery.setCurrentRow(style_id % self.catalog.num_styles)

    def weights(self) -> np.ndarray:
        """(1−t)·A + t·B: interpolates every CIN γ/β between the two styles."""
        t = self.blend.value() / 100.0
        w = np.zeros(self.catalog.num_styles, np.float32)
        w[self.style_a] += 1.0 - t
        w[self.style_b] += t
        return w

    def mix(self) -> StyleMix:
        """What the gallery sends: the blend as a typed mix, by the styles' names (never text)."""
        return StyleMix.of(self.weights(), self.catalog)

    def show_parts(self, parts: list[tuple[int, float]]) -> None:
        """Show a mix's two largest parts ((id, share), heaviest first) as the gallery's A, B and blend."""
        a, share_a = parts[0]
        self.select(a)
        if len(parts) > 1:
            b, share_b = parts[1]
            self.second.setCurrentIndex(b)
            self.blend.setValue(round(100 * share_b / (share_a + share_b)))
        else:
            self.blend.setValue(0)

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))
