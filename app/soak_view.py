"""The soak with the app's own view: frames painted by a real FrameView (offscreen where there is no
display) on the GUI thread's 16 ms poll, as in the window, so the soak pays what the app pays."""
from __future__ import annotations

import os
import threading

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from engine import defaults

from app.view import FrameView


def run_with_view(soak, progress) -> dict:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication([])
    view = FrameView()
    view.resize(960, 540)
    view.show()
    holder: dict = {}
    soak.view = lambda session: holder.setdefault("session", session)
    shown = [0]

    def poll() -> None:
        session = holder.get("session")
        if session is None:
            return
        seq, result = session.latest.latest()
        if seq != shown[0] and result is not None:
            shown[0] = seq
            view.show_frame(result.original, result.stylized)
            view.repaint()  # paint now, as a visible window would

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(defaults.VIEW_POLL_MS)
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["report"] = soak.run(progress)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            outcome["error"] = exc
        finally:
            QTimer.singleShot(0, app.quit)

    thread = threading.Thread(target=work, name="soak", daemon=True)
    thread.start()
    while thread.is_alive():
        app.processEvents()
        thread.join(0.005)
    timer.stop()
    view.close()  # Qt objects go before the interpreter does (a late GC of them can crash at exit)
    view.deleteLater()
    timer.deleteLater()
    app.processEvents()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["report"]
