"""The live soak: the test of record for the live path. A real Session with real sinks (the MJPEG
stream server with and without a real HTTP client on 127.0.0.1, the virtual-camera sink, optionally
the app's view offscreen) runs a file paced at its own rate for minutes, switching styles on a
schedule as a user would (a stock style the slim network carries, one it does not, a picture style,
blends). Every second it records what a user sees: displayed FPS, render scale, network and backend,
frame work and capture→sink latency p50/p95, the process's CPU, and every build and failure. Then it
writes JSON and a PNG plot.

A v4l2loopback device cannot exist on every machine; where none is given, the virtual camera's frames
go to a stand-in device that converts and drops them (the sink's own thread and conversion are real).
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from engine.metrics import machine_info
from engine.paths import ASSETS_DIR
from engine.sinks.server import ServeSettings
from engine.sinks.virtualcam import VirtualCamSink
from engine.styles.mix import StyleMix, slugify
from engine.styles.user_styles import UserStyleStore, load_catalog
from engine.live.events import Failed
from engine.live.governor import GovernorSettings
from engine.live.pipeline import WORK, FrameResult, StyleSettings
from engine.live.session import Session, SessionSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SoakSettings:
    source: str
    size: Optional[tuple[int, int]] = (640, 480)
    backend: str = "auto"
    duration_s: float = 600.0
    switch_every_s: float = 30.0
    schedule: tuple[StyleMix, ...] = ()  # styles, cycled (parsed where given); () = the default mix (default_schedule)
    client: str = "half"  # when a stream client reads: none | all | half (the second half of each switch)
    vcam: bool = True
    vcam_device: Optional[str] = None  # a real v4l2loopback device; None: the stand-in
    stabilize: bool = True
    target_fps: float = 30.0
    keyframes: str = "auto"  # carry full-size keyframes along the motion (auto: where the network cannot keep up)
    idle_s: float = 0.0  # at the end: this long with nobody watching (the app's idle), CPU measured
    picture: Optional[Path] = None  # the picture style's picture (default: a bundled photo)
    frames_dir: Optional[Path] = None  # save the live frame (input and output) just before each switch

    def __post_init__(self):  # a schedule given as text (a script, a test) is parsed here, once
        object.__setattr__(self, "schedule", tuple(StyleMix.parse(m) for m in self.schedule))


class StandInCamera:
    """pyvirtualcam.Camera's surface for a machine with no virtual camera device: takes each frame in
    the device's native format (I420), counts it, keeps nothing. Not a real device."""

    def __init__(self, width, height, fps, *, fmt=None, device=None, **_):
        import pyvirtualcam

        self.width, self.height, self.fps = width, height, fps
        self.fmt = fmt or pyvirtualcam.PixelFormat.RGB
        self.native_fmt = pyvirtualcam.PixelFormat.I420
        self.device = "stand-in (no v4l2loopback device)"
        self.sent = 0

    def send(self, frame) -> None:
        self.sent += 1

    def sleep_until_next_frame(self) -> None:
        time.sleep(1.0 / self.fps)

    def close(self) -> None:
        pass


def default_schedule(catalog, picture_name: Optional[str]) -> list[StyleMix]:
    """A stock style the slim network renders within the floor, one it does not, the picture style,
    a blend of two stock styles and a blend across both networks."""
    slim = next(iter(catalog.lighter.values()), None)
    within = list(slim.manifest.get("within_floor", [])) if slim is not None else []
    floor = 7 if 7 in within else (within[0] if within else 7)
    outside = next(i for i in range(catalog.stock.num_styles) if i not in within and i != floor)
    schedule = [StyleMix.named(floor), StyleMix.named(outside)]
    if picture_name:
        schedule.append(StyleMix.named(picture_name))
    schedule.append(StyleMix(((floor, 0.5), (outside, 0.5))))
    if picture_name:
        schedule.append(StyleMix(((floor, 0.5), (slugify(picture_name), 0.5))))
    return schedule


class _LogTap(logging.Handler):
    """Every warning from the engine and the soak, timed: builds, failed builds, anything that went wrong."""

    def __init__(self, t0: float):
        super().__init__(logging.INFO)  # Handler.handle holds self.lock (an RLock) around emit
        self.t0, self.lines = t0, []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        build = "building" in message or "built in" in message or "switched to" in message
        if record.levelno >= logging.WARNING or build:
            self.lines.append({"t": round(time.monotonic() - self.t0, 2), "level": record.levelname,
                               "message": message[:300]})


class _StreamClient:
    """A real HTTP client reading /stream.mjpg while ``active`` is set; counts JPEGs."""

    def __init__(self, port: int, active: threading.Event, stop: threading.Event):
        self.port, self.active, self.stop = port, active, stop
        self.frames = 0
        self.thread = threading.Thread(target=self._run, name="soak-client", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            if not self.active.wait(0.2):
                continue
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            response = None
            try:
                conn.request("GET", "/stream.mjpg")
                response = conn.getresponse()
                while self.active.is_set() and not self.stop.is_set():
                    line = response.fp.readline()
                    if not line:
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                        response.fp.readline()
                        response.fp.read(length)
                        self.frames += 1
            except OSError as exc:
                log.warning("soak client: %s", exc)
                self.stop.wait(0.5)
            finally:
                if response is not None:
                    response.close()  # the socket stays open while the response holds it
                conn.close()


def wait_for(predicate: Callable[[], object], timeout: float, stop: threading.Event) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline or stop.wait(0.02):
            return False
    return True


STORE_PREFIX = "stylecam-soak-"  # + pid: the soak's own style store, in the temp folder


def _remove_stores_of_killed_soaks() -> None:
    """The temp stores left by soaks that were killed (their process is gone)."""
    if os.name != "posix":  # os.kill(pid, 0) is a probe only on POSIX
        return
    for folder in Path(tempfile.gettempdir()).glob(f"{STORE_PREFIX}*-*"):
        try:
            pid = int(folder.name[len(STORE_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # another user's process: alive
            pass


def _cpu_seconds() -> float:
    """CPU seconds of this process and of every child, the live ones too (the build process lives as long
    as the session: ``os.times`` counts a child only once it has exited and been waited for)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + sum(map(_proc_cpu, _descendants(os.getpid())))


def _descendants(pid: int) -> list[int]:
    """Live child processes, theirs too (Linux /proc; none elsewhere)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(x) for x in f.read().split()]
                found += kids
                todo += kids
        except OSError:
            continue
    return found


def _proc_cpu(pid: int) -> float:
    """utime + stime of a live process, in seconds (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Soak:
    """Runs the schedule, samples every second; ``run()`` returns the report (also kept as ``report``)."""

    def __init__(self, settings: SoakSettings, view: Optional[Callable[[object], None]] = None):
        """``view``: called with the open session before frames flow (the app's view, offscreen)."""
        self.settings = settings
        self.view = view
        self.rows: list[dict] = []
        self._handover: list[float] = []  # grab → hand-over to the sinks of every live frame
        self.report: dict = {}
        self.startup_s = 0.0

    def run(self, progress: Callable[[int, int], None] = lambda done, total: None) -> dict:
        s = self.settings
        t0 = time.monotonic()
        tap = _LogTap(t0)
        levels = {logger: logger.level for logger in (logging.getLogger("engine"), log)}  # and the soak's own
        for logger in levels:
            logger.addHandler(tap)
            logger.setLevel(logging.INFO)
        # a store of its own: the user's styles are neither read (a fitted row would change the stock
        # network the soak measures) nor written (a killed soak leaves its picture in a temp folder)
        _remove_stores_of_killed_soaks()
        own = Path(tempfile.mkdtemp(prefix=f"{STORE_PREFIX}{os.getpid()}-"))
        store = UserStyleStore(own / "styles")
        catalog = load_catalog(store=store)
        sinks = []
        if s.vcam:
            w, h = s.size or (640, 480)
            factory = None if s.vcam_device else StandInCamera
            sinks.append(VirtualCamSink(w - w % 2, h - h % 2, 30.0, device=s.vcam_device, camera_factory=factory))
        first = (s.schedule or default_schedule(catalog, None))[0]
        session_settings = SessionSettings(source=s.source, size=s.size, backend=s.backend,
                                           style=StyleSettings(style=first, stabilize=s.stabilize),
                                           serve=ServeSettings(port=0), idle_unwatched=True,
                                           governor=GovernorSettings(target_fps=s.target_fps or None),
                                           keyframes=s.keyframes)
        failures: list[dict] = []

        def on_event(event) -> None:
            if isinstance(event, Failed):
                failures.append({"t": round(time.monotonic() - tap.t0, 2), "kind": event.kind,
                                 "message": event.message})
        try:
            session = Session(catalog, session_settings, sinks, on_event=on_event, store=store).open()
        except BaseException:
            shutil.rmtree(own, ignore_errors=True)
            raise
        try:
            server = session.serve()
            schedule = list(s.schedule)
            if not schedule:
                added = self._add_picture(session)
                schedule = default_schedule(session.wanted_catalog, added)
                session.set_remote_style(schedule[0])  # an upload selects itself; the schedule starts with its first
            if self.view is not None:
                self.view(session)
            self.report = self._drive(session, server, schedule, t0, tap, failures, progress)
            source_fps = session.pipeline.source.fps if session.pipeline is not None else 0.0
            goal = min(x for x in (s.target_fps or 0.0, source_fps or 0.0, float("inf")) if x > 0)
            summary = self.report["summary"]
            summary["fps_goal"] = None if goal == float("inf") else round(goal, 1)
            summary["short"] = shortfalls(summary, s)
        finally:
            session.close()
            shutil.rmtree(own, ignore_errors=True)
            for logger, level in levels.items():
                logger.removeHandler(tap)
                logger.setLevel(level)
        return self.report

    def _add_picture(self, session) -> str:
        path = self.settings.picture or ASSETS_DIR / "photos" / "chelsea.png"
        return session.add_picture(Path(path).read_bytes(), f"soak picture {os.getpid()}")

    def _drive(self, session, server, schedule, t0, tap, failures, progress) -> dict:
        s = self.settings
        frames: list[FrameResult] = []
        lock = threading.Lock()
        stop, client_on = threading.Event(), threading.Event()
        client = _StreamClient(server.port, client_on, stop)

        def on_frame(result: FrameResult) -> None:
            with lock:
                frames.append(result)
        runner = threading.Thread(target=session.run, kwargs={"stop": stop, "on_frame": on_frame},
                                  name="soak-session", daemon=True)
        runner.start()
        # the timeline starts at the first frame; the start itself (sources, exports, the first
        # backend) is reported as ``startup_s``
        if not wait_for(lambda: frames, timeout=300.0, stop=stop):
            log.warning("soak: no frame within 300 s")
        start = time.monotonic()
        self.startup_s = start - t0
        with tap.lock:
            tap.t0 = start
            for line in tap.lines:
                line["t"] = round(line["t"] - self.startup_s, 2)
        for f in failures:
            f["t"] = round(f["t"] - self.startup_s, 2)
        t0 = start
        switches, style_index, samples = [], 0, []
        cpu_before, wall_before = _cpu_seconds(), time.monotonic()
        total = int(s.duration_s + s.idle_s)
        vcam = next((x for x in session.pipeline.sinks if x.name == "virtualcam"), None)
        try:
            for second in range(total):
                t = second + 1
                idle = second >= s.duration_s
                phase = (second % s.switch_every_s) / s.switch_every_s
                want_client = not idle and (s.client == "all" or (s.client == "half" and phase >= 0.5))
                client_on.set() if want_client else client_on.clear()
                if idle and second == int(s.duration_s):
                    session.set_viewing(False)
                    if vcam is not None:
                        session.set_output("vcam", False)
                if not idle and second % s.switch_every_s == 0:
                    if s.frames_dir is not None and style_index:
                        samples.append(self._sample(session, s.frames_dir, len(samples)))
                    spec = schedule[style_index % len(schedule)]
                    session.set_remote_style(spec)  # as a remote would: the app's view shows it
                    switches.append({"t": round(time.monotonic() - t0, 2), "style": str(spec)})
                    style_index += 1
                time.sleep(max(0.0, t0 + t - time.monotonic()))
                now, cpu = time.monotonic(), _cpu_seconds()
                with lock:
                    got, frames[:] = list(frames), []
                row = self._row(t, got, session, client, (cpu - cpu_before) / (now - wall_before) * 100,
                                want_client, idle)
                if not idle:
                    self._handover += row.pop("handover_ms")  # pooled over the frames, not per second
                else:
                    row.pop("handover_ms")
                self.rows.append(row)
                cpu_before, wall_before = cpu, now
                progress(t, total)
        finally:
            stop.set()
            client_on.clear()
            runner.join(10)
        report = self._summary(schedule, switches, tap.lines, failures, session)
        report["samples"] = samples
        return report

    @staticmethod
    def _sample(session, folder: Path, k: int) -> dict:
        """The newest live frame: its input and output as PNG, with what made it."""
        _, r = session.latest.latest()
        folder.mkdir(parents=True, exist_ok=True)
        names = {}
        for part, image in (("input", r.original), ("output", r.stylized)):
            names[part] = str(folder / f"{k:02d}-{part}.png")
            cv2.imwrite(names[part], cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return {**names, "style": session.current(), "render_scale": r.render_scale, "network": "+".join(r.networks),
                "backend": r.backend, "stabilize": session.style.stabilize}

    @staticmethod
    def _row(t, got, session, client, cpu, client_on, idle) -> dict:
        last = got[-1] if got else None
        work = [sum(r.times_ms[k] for k in WORK) for r in got]
        latency = [r.latency_ms for r in got]
        pct = (lambda v, q: round(float(np.percentile(v, q)), 1) if v else None)
        ages = [r.keyframe_age_ms for r in got if r.mode == "keyframes"]
        return {"t": t, "fps": len(got), "render_scale": last.render_scale if last else None,
                "mode": last.mode if last else None, "keyframe_fps": round(last.keyframe_fps, 1) if last else None,
                "keyframe_age_p50_ms": pct(ages, 50), "handover_ms": latency,
                "network": "+".join(last.networks) if last else None, "backend": last.backend if last else None,
                "work_p50_ms": pct(work, 50), "work_p95_ms": pct(work, 95),
                "latency_p50_ms": pct(latency, 50), "latency_p95_ms": pct(latency, 95),
                "cpu_percent": round(cpu, 1), "client": client_on, "client_frames": client.frames, "idle": idle,
                "readers": [sink.name for sink in list(session.pipeline.sinks) if sink.wants_frames()],
                # CPython before 3.12: a count that keeps falling means a C extension drops references to
                # None it never took, and the interpreter aborts when it reaches zero (seen at exit)
                "none_refs": sys.getrefcount(None),
                "builds_pending": session.builder.pending()}

    def _summary(self, schedule, switches, log_lines, failures, session) -> dict:
        rows = [r for r in self.rows if not r["idle"]]
        live = [r for r in rows if r["fps"]]
        scales = [r["render_scale"] for r in live]
        changes = sum(1 for a, b in zip(scales, scales[1:]) if a != b)
        minutes = max(len(rows) / 60.0, 1e-9)
        share = {f"{k:g}": round(scales.count(k) / len(scales), 3) for k in sorted(set(scales), reverse=True)}
        failed_builds = session.builder.failures  # from the build results (each failed try), not from log text
        idle_rows = [r for r in self.rows if r["idle"]][2:]  # the first seconds still finish a frame
        no_client = [r["fps"] for r in rows if not r["client"]]
        with_client = [r["fps"] for r in rows if r["client"]]
        handover = self._handover  # every frame's grab → hand-over, pooled
        carried = [r for r in live if r["mode"] == "keyframes"]
        delivery = {name: meter.pooled() for name, meter in session.pipeline.delivery.items() if len(meter)}
        return {
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.settings).items()
                         if k != "schedule"},
            "machine": machine_info(), "schedule": [str(m) for m in schedule], "switches": switches,
            "summary": {
                "startup_s": round(self.startup_s, 1), "seconds": len(rows), "failed_builds": failed_builds,
                "failures": len(failures),
                "scale_share": share, "scale_changes_per_min": round(changes / minutes, 2),
                "fps_mean": round(float(np.mean([r["fps"] for r in rows])), 1) if rows else 0.0,
                "fps_no_client": round(float(np.mean(no_client)), 1) if no_client else None,
                "fps_with_client": round(float(np.mean(with_client)), 1) if with_client else None,
                # grab → hand-over to the sinks, percentiles over every frame; then grab → each sink's delivery
                "latency_p50_ms": round(float(np.percentile(handover, 50)), 1) if handover else None,
                "latency_p95_ms": round(float(np.percentile(handover, 95)), 1) if handover else None,
                "delivery": delivery,
                "keyframe_share": round(len(carried) / len(live), 3) if live else 0.0,
                "keyframe_fps": round(float(np.median([r["keyframe_fps"] for r in carried])), 1) if carried else None,
                "keyframe_age_p50_ms": round(float(np.median([r["keyframe_age_p50_ms"] for r in carried
                                                              if r["keyframe_age_p50_ms"] is not None])), 1)
                if carried else None,
                "cpu_percent_live": round(float(np.mean([r["cpu_percent"] for r in rows])), 1) if rows else None,
                "cpu_percent_idle": round(float(np.mean([r["cpu_percent"] for r in idle_rows])), 1)
                if idle_rows else None,
                "fps_idle": round(float(np.mean([r["fps"] for r in idle_rows])), 1) if idle_rows else None,
                "backends": sorted({r["backend"] for r in live}), "networks": sorted({r["network"] for r in live}),
                "builds_asked": session.builder.builds, "builds_failed_in_process": session.builder.failures,
                "builds_given_up": session.pipeline.backend.given_up() if session.pipeline else [],
            },
            "log": log_lines, "failures": failures, "seconds": self.rows,
        }


FPS_SHARE = 0.8  # the displayed rate must reach this share of its goal (the first seconds and switches count)


def shortfalls(summary: dict, settings: SoakSettings) -> list[str]:
    """The soak's checks that fell short, each named with its figure and its limit (empty: all passed)."""
    short = []
    if summary.get("failures"):
        short.append(f"failures: {summary['failures']} frames or outputs failed (want 0)")
    failed = summary.get("builds_failed_in_process") or 0
    if failed:
        gave_up = summary.get("builds_given_up") or []
        short.append(f"failed builds: {failed} builds failed in the build process (want 0)"
                     + (f", given up for {', '.join(gave_up)}" if gave_up else ""))
    goal, fps = summary.get("fps_goal"), summary.get("fps_mean")
    if goal and settings.duration_s and (fps or 0.0) < FPS_SHARE * goal:
        short.append(f"fps: {fps or 0:g} displayed FPS on average, below {FPS_SHARE:.0%} of the goal of {goal:g}")
    if settings.idle_s and summary.get("fps_idle"):
        short.append(f"idle: {summary['fps_idle']:g} FPS made while nobody watched (want 0)")
    return short


def write_report(report: dict, json_path: Path, png_path: Optional[Path] = None) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    if png_path is not None:
        cv2.imwrite(str(png_path), cv2.cvtColor(plot(report), cv2.COLOR_RGB2BGR))


def plot(report: dict, width: int = 1200) -> np.ndarray:
    """Displayed FPS (blue) and render scale (green, ×30) per second; style switches grey, builds
    orange, failures red, idle shaded. An RGB image."""
    rows = report["seconds"]
    height, left, top, bottom = 360, 50, 30, 40
    img = np.full((height, width, 3), 255, np.uint8)
    n = max(len(rows), 1)
    x = lambda t: int(left + (width - left - 20) * t / n)  # noqa: E731
    y = lambda v: int(height - bottom - (height - top - bottom) * min(v, 40) / 40)  # noqa: E731
    for v in range(0, 41, 10):
        cv2.line(img, (left, y(v)), (width - 20, y(v)), (225, 225, 225), 1)
        cv2.putText(img, str(v), (10, y(v) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1)
    for r in rows:
        if r["idle"]:
            cv2.rectangle(img, (x(r["t"] - 1), top), (x(r["t"]), height - bottom), (240, 240, 240), -1)
    for sw in report["switches"]:
        cv2.line(img, (x(sw["t"]), top), (x(sw["t"]), height - bottom), (170, 170, 170), 1)
    for line in report["log"]:
        colour = (30, 30, 220) if "failed" in line["message"].lower() else (0, 150, 255)
        cv2.line(img, (x(line["t"]), top), (x(line["t"]), top + 12), colour, 2)
    for f in report["failures"]:
        cv2.line(img, (x(f["t"]), top), (x(f["t"]), height - bottom), (30, 30, 220), 2)
    fps = [(x(r["t"]), y(r["fps"])) for r in rows]
    scale = [(x(r["t"]), y((r["render_scale"] or 0) * 30)) for r in rows if r["render_scale"] is not None]
    for pts, colour in ((fps, (220, 90, 40)), (scale, (60, 160, 30))):
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 2)
    m = report["machine"]
    title = (f"{m.get('cpu', '?')} {m.get('cpu_family_model', '')} {m.get('cpu_profile', '')} · "
             f"{report['summary']['backends']} · blue: displayed FPS · green: render scale x30")
    cv2.putText(img, title[:150], (left, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.putText(img, "seconds", (width // 2, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    for t in range(0, n + 1, max(10, (n // 10) // 10 * 10 or 10)):
        cv2.putText(img, str(t), (x(t) - 8, height - bottom + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (90, 90, 90), 1)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
