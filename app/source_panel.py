"""Source, resolution and backend pickers (only what is available here is offered)."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QFormLayout, QLabel, QWidget

from engine.video.devices import list_cameras

SIZES = ["320x240", "640x480", "960x540", "1280x720", "1920x1080"]
OPEN_FILE = "__open__"


class SourcePanel(QWidget):
    sourceChosen = Signal(str)
    sizeChosen = Signal(str)
    backendChosen = Signal(str)

    def __init__(self, backends: dict[str, str], source: str, size: str, backend: str, parent=None):
        super().__init__(parent)
        self.cameras = list_cameras()
        self.source = QComboBox()
        for spec, label in self.cameras:
            self.source.addItem(label, spec)
        self.source.addItem("Demo clip (bundled)", "demo")
        self.source.addItem("Synthetic test pattern", "synthetic")
        self.source.addItem("Open video/image file…", OPEN_FILE)
        self.size = QComboBox()
        self.size.addItems(SIZES)
        self.backend = QComboBox()
        self.backend.addItem("auto (fastest)", "auto")
        for name, status in backends.items():
            if status == "ok":
                self.backend.addItem(name, name)
        self.error = QLabel()
        self.error.setStyleSheet("color: #e06c75")
        self.error.setWordWrap(True)
        self.error.hide()
        form = QFormLayout(self)
        form.addRow("Source", self.source)
        form.addRow("Resolution", self.size)
        form.addRow("Backend", self.backend)
        form.addRow(self.error)
        self.set_current(source, size, backend)
        self.source.activated.connect(self._source_activated)
        self.size.activated.connect(lambda _: self.sizeChosen.emit(self.size.currentText()))
        self.backend.activated.connect(lambda _: self.backendChosen.emit(self.backend.currentData()))

    def set_current(self, source: str, size: str, backend: str) -> None:
        if self.source.findData(source) < 0:
            self.source.insertItem(self.source.count() - 1, source.rsplit("/", 1)[-1], source)
        self.source.setCurrentIndex(self.source.findData(source))
        if self.size.findText(size) < 0:
            self.size.addItem(size)
        self.size.setCurrentText(size)
        self.backend.setCurrentIndex(max(self.backend.findData(backend), 0))

    def _source_activated(self, index: int) -> None:
        spec = self.source.itemData(index)
        if spec == OPEN_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Open video or image", "",
                                                  "Media (*.mp4 *.avi *.mov *.mkv *.webm *.png *.jpg *.jpeg *.bmp)")
            if not path:
                return
            spec = path
            self.set_current(spec, self.size.currentText(), self.backend.currentData())
        self.sourceChosen.emit(spec)

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))
