"""The main window: live view, style gallery and controls, source pickers, HUD in the status bar."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QEvent, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel, QMainWindow,
                               QPushButton, QVBoxLayout, QWidget)

from engine import defaults
from engine.backends import available_backends
from engine.frame.frames import parse_size
from engine.metrics import LatencyMeter, RateMeter
from engine.live.pipeline import StyleSettings
from engine.sinks import write_image
from engine.styles.catalog import StyleCatalog, as_catalog
from engine.styles.packs import StylePack

from app.settings import GuiSettings, save_settings
from app.source_panel import SourcePanel
from app.styles_panel import StylesPanel
from app.view import FrameView
from app.view import to_qimage
from app.workers import EngineRequest, EngineWorker, StyleTrainer


def _default_dir(kind) -> Path:
    found = QStandardPaths.writableLocation(kind)
    return Path(found) if found else Path.home()


class MainWindow(QMainWindow):
    def __init__(self, catalog: StyleCatalog | StylePack, settings: GuiSettings, notice: str = ""):
        super().__init__()
        self.settings = settings
        self.setWindowTitle("stylecam")
        self.resize(1280, 760)
        catalog = as_catalog(catalog)
        self._build_controls(catalog, settings)
        self.worker = EngineWorker(catalog, EngineRequest(settings.source, parse_size(settings.size), settings.backend),
                                   self._look())
        self.worker.set_full_quality(settings.full_quality)
        self._connect()
        self.trainer: Optional[StyleTrainer] = None
        self._shown_seq = 0
        self._shown_result = None
        self._painted = RateMeter(60)
        self._on_screen = LatencyMeter()  # grab → handed to the window, per frame
        self._recording: Optional[Path] = None
        self._timer = QTimer(self)
        self._timer.setInterval(defaults.VIEW_POLL_MS)
        self._timer.timeout.connect(self._poll)
        if notice:
            self.statusBar().showMessage(notice, 10000)
        self.worker.start()
        self._timer.start()

    def _build_controls(self, catalog: StyleCatalog, settings: GuiSettings) -> None:
        """The view, the side panel's controls and the HUD, as last remembered."""
        self.view = FrameView()
        self.view.side_by_side = settings.side_by_side
        self.sources = SourcePanel(available_backends(), settings.source, settings.size, settings.backend)
        self.styles = StylesPanel(catalog, settings.style_a, settings.style_b, settings.blend, settings.strength,
                                  settings.preserve_colors, settings.stabilize, settings.mask)
        self.styles.removeRequested.connect(self.remove_style)
        self.compare = QCheckBox("Side by side: original | stylized")
        self.compare.setChecked(settings.side_by_side)
        self.full_quality = QCheckBox("Full quality (never lower the render scale)")
        self.full_quality.setToolTip(f"Off: the picture is rendered smaller when needed to hold "
                                     f"{defaults.TARGET_FPS_LIVE:g} FPS, and back at full size when there is headroom")
        self.full_quality.setChecked(settings.full_quality)
        self.snap_button = QPushButton("Snapshot (PNG)")
        self.record_button = QPushButton("Record MP4")
        self.record_button.setCheckable(True)
        self.full_button = QPushButton("Fullscreen (F11)")
        self.vcam_box = QCheckBox("Virtual camera (Zoom, Meet, OBS)")
        self.stream_box = QCheckBox(f"Network stream (MJPEG, http://{defaults.SERVE_HOST}:{defaults.SERVE_PORT})")
        self.output_error = QLabel()
        self.output_error.setStyleSheet("color: #e06c75")
        self.output_error.setWordWrap(True)
        self.output_error.hide()

        side = QVBoxLayout()
        side.addWidget(self.sources)
        side.addWidget(self.styles, 1)
        side.addWidget(self.compare)
        side.addWidget(self.full_quality)
        side.addWidget(self.vcam_box)
        side.addWidget(self.stream_box)
        side.addWidget(self.output_error)
        row = QHBoxLayout()
        for b in (self.snap_button, self.record_button, self.full_button):
            row.addWidget(b)
        side.addLayout(row)
        self.side_panel = QWidget()
        self.side_panel.setLayout(side)
        self.side_panel.setFixedWidth(3 * 156 + 60)
        # the HUD has a line of its own under the view: in the status bar it shared one line with the
        # messages, and at 1280 pixels a long message was cut off and ran into it
        self.hud = QLabel()
        self.hud.setWordWrap(True)
        self.hud.setStyleSheet("color: #9aa0a6")
        left = QVBoxLayout()
        left.addWidget(self.view, 1)
        left.addWidget(self.hud)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.addLayout(left, 1)
        layout.addWidget(self.side_panel)
        self.setCentralWidget(central)

    def _connect(self) -> None:
        """Engine news to the widgets, the widgets' requests to the engine, and the keys."""
        self.worker.status.connect(self._on_status)
        self.worker.sourceGone.connect(self._on_source_gone)
        self.worker.sourceBack.connect(self._on_source_back)
        self.worker.errored.connect(self._on_error)
        self.worker.started.connect(self._on_started)
        self.worker.thumbnail.connect(self.styles.set_thumbnail)
        self.worker.outputChanged.connect(self._on_output)
        self.worker.remoteStyle.connect(self._show_remote_style)
        self.worker.catalogChanged.connect(self._show_catalog)
        self.vcam_box.toggled.connect(lambda on: self.worker.set_output("vcam", on))
        self.stream_box.toggled.connect(lambda on: self.worker.set_output("stream", on))
        self.sources.sourceChosen.connect(lambda s: self._request(source=s))
        self.sources.sizeChosen.connect(lambda s: self._request(size=parse_size(s)))
        self.sources.backendChosen.connect(lambda b: self._request(backend=b))
        self.styles.changed.connect(self._style_changed)
        self.styles.add_button.clicked.connect(self._ask_for_style_picture)
        self.setAcceptDrops(True)
        self.compare.toggled.connect(self._toggle_compare)
        self.full_quality.toggled.connect(self.worker.set_full_quality)
        self.snap_button.clicked.connect(lambda: self.snapshot())
        self.record_button.toggled.connect(self._toggle_record)
        self.full_button.clicked.connect(self.toggle_fullscreen)
        self.view.doubleClicked.connect(self.toggle_fullscreen)
        QShortcut(QKeySequence(Qt.Key.Key_F11), self, self.toggle_fullscreen)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, lambda: self.isFullScreen() and self.toggle_fullscreen())
        for n in range(1, 10):
            QShortcut(QKeySequence(str(n)), self, lambda n=n: self.styles.select(n - 1))
        QShortcut(QKeySequence(Qt.Key.Key_Right), self, lambda: self.styles.select(self.styles.style_a + 1))
        QShortcut(QKeySequence(Qt.Key.Key_Left), self, lambda: self.styles.select(self.styles.style_a - 1))

    # -- engine -> view ---------------------------------------------------------------------
    def _poll(self) -> None:
        seq, result = self.worker.latest()
        if seq == self._shown_seq or result is None or self.isMinimized():
            return
        now = time.perf_counter()
        self._shown_seq, self._shown_result = seq, result
        self.view.message = ""
        self.view.show_frame(result.original, result.stylized)
        self._painted.tick(now)
        self._on_screen.since(result.grabbed_at)  # the window is this frame's sink
        self._update_hud(result)

    def _update_hud(self, result) -> None:
        pipe = self.worker.pipeline
        h, w = result.stylized.shape[:2]
        backend = result.backend or "?"  # what ran this frame (the live backend may be mid-swap)
        source_fps = pipe.source.fps if pipe else 0.0
        names = result.networks  # (the governor's text names the slim network when it runs it)
        if names == ("stock",) or f"{names[0]} network" in result.governor:
            nets = ""
        elif len(names) == 1:
            nets = f" · {names[0]} network"
        else:
            nets = f" · {' + '.join(names)} networks ({len(names)}× cost)"
        if result.mode == "keyframes":  # the network renders full-size keyframes; every frame carries one
            render = (f" · keyframes {result.keyframe_fps:.1f}/s at {result.render_scale:.2f}×, "
                      f"{result.keyframe_age_ms:.0f} ms old")
        else:
            render = f" · {result.governor}" if result.governor else (
                f" · render {result.render_scale:.2f}×" if result.render_scale < 1 else "")
        p50, p95 = self._on_screen.percentiles(50, 95)
        latency = f" · grab→window {p50:.0f}/{p95:.0f} ms (p50/p95)" if p50 is not None else ""
        given_up = f"\n⚠ {result.build_failure}" if result.build_failure else ""  # a build given up: why
        self.hud.setText(f"capture {source_fps:.0f} fps · displayed {self._painted.rate:.1f} fps{latency} · "
                         f"{backend}{nets} · {w}×{h}{render}{given_up}")

    # -- idle: a hidden window makes no frames unless an output wants them ----------------------
    def _viewing_changed(self) -> None:
        if hasattr(self, "worker"):  # Qt may send a state change while the window is being built
            self.worker.set_viewing(self.isVisible() and not self.isMinimized())

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.WindowStateChange:
            self._viewing_changed()
        super().changeEvent(event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._viewing_changed()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self._viewing_changed()

    # -- controls -> engine -----------------------------------------------------------------
    def _look(self) -> StyleSettings:
        """What the controls show, as one value: the gallery's mix (typed, never text) and the rest."""
        return StyleSettings(style=self.styles.mix(), strength=self.styles.strength.value() / 100.0,
                             preserve_colors=self.styles.keep_colors.isChecked(),
                             stabilize=self.styles.steady.isChecked(), mask=self.styles.layer.currentData())

    def _style_changed(self) -> None:
        self.styles.show_error("")
        self.worker.set_look(self._look())

    def _request(self, **changes) -> None:
        self.sources.show_error("")
        self.worker.request(**changes)

    def _toggle_compare(self, on: bool) -> None:
        self.view.side_by_side = on
        if self._shown_result is not None:
            self.view.show_frame(self._shown_result.original, self._shown_result.stylized)

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
            self.side_panel.show()
            self.statusBar().show()
        else:
            self.side_panel.hide()
            self.statusBar().hide()
            self.showFullScreen()

    def snapshot(self, path: Optional[Path] = None) -> Optional[Path]:
        """Save exactly the displayed frame as PNG."""
        if self.view.displayed is None:
            return None
        path = Path(path) if path else _default_dir(QStandardPaths.StandardLocation.PicturesLocation) / \
            time.strftime("stylecam-%Y%m%d-%H%M%S.png")
        write_image(path, self.view.displayed)
        self.statusBar().showMessage(f"snapshot saved to {path}", 5000)
        return path

    def _toggle_record(self, on: bool, path: Optional[Path] = None) -> None:
        if on:
            path = Path(path) if path else _default_dir(QStandardPaths.StandardLocation.MoviesLocation) / \
                time.strftime("stylecam-%Y%m%d-%H%M%S.mp4")
            self._recording = path
            self.record_button.setText("Stop recording")
        else:
            self.record_button.setText("Record MP4")
        self.worker.set_recording(path if on else None)

    def start_recording(self, path: Path) -> None:
        self.record_button.blockSignals(True)
        self.record_button.setChecked(True)
        self.record_button.blockSignals(False)
        self._toggle_record(True, path)

    def stop_recording(self) -> None:
        self.record_button.setChecked(False)

    # -- your own styles --------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.add_style(Path(urls[0]))

    def _ask_for_style_picture(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Picture for a new style", "",
                                              "Pictures (*.png *.jpg *.jpeg *.bmp *.webp *.tif *.tiff)")
        if path:
            self.add_style(Path(path))

    def add_style(self, picture: Path, name: Optional[str] = None, settings=None) -> Optional[StyleTrainer]:
        """Add a style in the background: a picture style (about a second), or with ``settings.mode``
        fit/full a trained stock row, previewed by the picture network meanwhile."""
        if self.trainer is not None:
            self.styles.show_error("a style is already being added; wait for it to finish")
            return None
        if name is None:
            name, ok = QInputDialog.getText(self, "New style", "Name:", text=picture.stem.replace("_", " ").title())
            if not ok or not name.strip():
                return None
        frame = self._shown_result.original if self._shown_result is not None else None
        self.trainer = StyleTrainer(picture, name.strip(), frame, settings)
        self.trainer.preview.connect(self._show_teacher_preview)
        self.trainer.progress.connect(self._train_progress)
        self.trainer.finished.connect(self._style_added)
        self.trainer.failed.connect(self._style_failed)
        self.styles.show_error("")
        self.styles.train_progress.setFormat(f"adding '{name}' … %p%")
        self.styles.train_progress.setValue(0)
        self.styles.train_progress.show()
        self.trainer.start()
        return self.trainer

    def _show_teacher_preview(self, image) -> None:
        from PySide6.QtGui import QPixmap

        self._preview_array = image  # keep the buffer alive for the QImage
        pix = QPixmap.fromImage(to_qimage(image)).scaledToWidth(240)
        self.styles.train_preview.setPixmap(pix)
        self.styles.train_preview.setToolTip("preview by the picture network; the stock-network row is training")
        self.styles.train_preview.show()

    def _train_progress(self, done: int, total: int) -> None:
        self.styles.train_progress.setMaximum(total)
        self.styles.train_progress.setValue(done)

    def _style_added(self, name: str) -> None:
        self.trainer = None
        self.styles.train_progress.hide()
        self.styles.train_preview.hide()
        self._reload_styles(select=name)
        self.statusBar().showMessage(f"new style '{name}' is ready", 8000)

    @property
    def catalog(self):
        """The styles: the session's (the window keeps no copy)."""
        return self.worker.catalog

    def _reload_styles(self, select: Optional[str] = None) -> None:
        """A style was added here (on disk): the session rebuilds the catalog; the gallery follows its
        news (``_show_catalog``)."""
        self.worker.reload_styles(select)

    def _show_catalog(self, catalog, mix) -> None:
        """Styles added or removed (here or over the network): the gallery shows them and the style in use."""
        self.styles.blockSignals(True)
        self.styles.set_catalog(catalog)
        self.styles.blockSignals(False)
        self._show_mix(catalog, mix)

    def remove_style(self, style_id: int) -> None:
        """Delete one of the user's styles (stock styles cannot be removed), through the session."""
        name = self.catalog.styles[style_id].name
        self.worker.remove_style(name)
        self.statusBar().showMessage(f"removing style '{name}'", 8000)

    def _style_failed(self, message: str) -> None:
        self.trainer = None
        self.styles.train_progress.hide()
        self.styles.train_preview.hide()
        self.styles.show_error(message)

    # -- engine news ------------------------------------------------------------------------
    def _on_output(self, name: str, on: bool, message: str, failed: bool) -> None:
        box = self.vcam_box if name == "vcam" else self.stream_box
        box.blockSignals(True)
        box.setChecked(on)
        box.blockSignals(False)
        self.output_error.setText(message if failed else "")
        self.output_error.setVisible(failed)
        self.statusBar().showMessage(message, 8000)

    def _show_remote_style(self, mix) -> None:
        """A style picked over the network: already in use; the gallery and blend controls show it and
        nothing is sent back."""
        self._show_mix(self.catalog, mix)

    def _show_mix(self, catalog, mix) -> None:
        """The gallery and blend controls show ``mix`` (a blend of more than two styles as its two largest
        parts), without sending it back."""
        largest = mix.largest(catalog)
        self.styles.blockSignals(True)
        self.styles.show_parts(largest)
        self.styles.blockSignals(False)
        if len(mix.parts) > 2:
            self.statusBar().showMessage(f"a blend of {len(mix.parts)} styles ({mix.label(catalog)}), shown as its "
                                         "two largest", 10000)

    def _on_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _on_source_gone(self, text: str) -> None:
        self.view.message = text  # over the last frame, which stays on screen
        self.view.update()
        self.statusBar().showMessage(text, 8000)

    def _on_source_back(self) -> None:
        self.view.message = ""
        self.view.update()
        self.statusBar().showMessage("the camera is back", 5000)

    def _on_error(self, component: str, message: str) -> None:
        if component in ("source", "backend"):
            self.sources.show_error(message)  # the worker already fell back (demo clip, auto) if it could
            cur = self.worker.current
            if cur is not None:  # what really runs
                self.sources.set_current(cur.source, f"{cur.size[0]}x{cur.size[1]}" if cur.size else self.settings.size,
                                         cur.backend)
        else:
            self.styles.show_error(message)
        self.statusBar().showMessage(message, 10000)

    def _on_started(self, source: str, backend: str) -> None:
        cur = self.worker.current
        self.sources.set_current(cur.source, f"{cur.size[0]}x{cur.size[1]}" if cur.size else self.settings.size,
                                 cur.backend)
        self.statusBar().showMessage(f"{source} · {backend}", 5000)

    # -- lifecycle --------------------------------------------------------------------------
    def current_settings(self) -> GuiSettings:
        cur = self.worker.current
        return GuiSettings(
            source=cur.source if cur else self.settings.source,
            size=self.sources.size.currentText(), backend=self.sources.backend.currentData() or "auto",
            style_a=self.styles.style_a, style_b=self.styles.style_b, blend=self.styles.blend.value(),
            strength=self.styles.strength.value(), preserve_colors=self.styles.keep_colors.isChecked(),
            stabilize=self.styles.steady.isChecked(), mask=self.styles.layer.currentData() or "none",
            side_by_side=self.compare.isChecked(), full_quality=self.full_quality.isChecked())

    def closeEvent(self, event) -> None:
        self._timer.stop()
        if self.trainer is not None:
            self.trainer.join(0.2)  # a daemon thread: an unfinished style is simply not saved
        save_settings(self.current_settings())
        self.hide()  # the window goes at once; the engine may still finish a compile (killing it would abort)
        self.worker.stop(timeout=defaults.QUIT_WAIT_S)
        super().closeEvent(event)
