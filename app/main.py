"""`stylecam gui`: start the window, optionally save a screenshot and quit (docs, tests)."""
from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from engine.video.devices import list_cameras
from engine.frame.frames import parse_size
from engine.paths import ASSETS_DIR
from engine.styles.catalog import StyleCatalog

from app.main_window import MainWindow
from app.settings import apply_style, load_settings

log = logging.getLogger(__name__)


def run(args, catalog: StyleCatalog) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("stylecam")
    app.setDesktopFileName("stylecam")  # matches assets/stylecam.desktop
    app.setWindowIcon(QIcon(str(ASSETS_DIR / "icon.png")))
    settings = load_settings()
    if args.size:
        settings.size = "x".join(map(str, parse_size(args.size)))
    if args.backend:
        settings.backend = args.backend
    if getattr(args, "stabilize", None) is not None:
        settings.stabilize = args.stabilize
    if args.style:  # a StyleMix: the CLI parsed it
        apply_style(settings, catalog, args.style)
    notice = ""
    if args.source:
        settings.source = args.source
    elif not settings.source:
        cameras = list_cameras()
        if cameras:
            settings.source = cameras[0][0]
        else:
            settings.source = "demo"
            notice = "No camera found — showing the bundled demo clip (pick a source on the right)"
    window = MainWindow(catalog, settings, notice)
    window.show()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or a session's logout quits as the window's close does
        signal.signal(signum, lambda *_: QTimer.singleShot(0, window.close))
    wake = QTimer(window)  # Python runs a signal's handler only when it gets control: give it some
    wake.timeout.connect(lambda: None)
    wake.start(200)
    if args.screenshot:
        shot = Path(args.screenshot)

        def grab_and_quit():
            window.grab().save(str(shot))
            log.info("screenshot saved to %s", shot)
            window.close()

        QTimer.singleShot(int(args.quit_after * 1000), grab_and_quit)
    elif args.quit_after:
        QTimer.singleShot(int(args.quit_after * 1000), window.close)
    app.exec()
    warmup = window.worker.warmup
    if warmup is not None and warmup.is_alive():
        # A compile cannot be interrupted, and a C++ thread still running at interpreter exit aborts
        # the process; settings are saved and the engine stopped, so leave without the teardown.
        log.info("leaving while the fast path is still compiling")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
