"""Does OpenVINO int8 (NNCF post-training quantization) pay on this CPU? (issue #35, docs/openvino-int8.md)

Quantizes the stock network's CPU export with NNCF (calibration: scikit-image photos that are not held
out, every style), under several choices of which convs stay in fp32, and measures for each:
- fidelity: PSNR of the int8 output against OpenVINO fp32's on the held-out photos (astronaut, coffee,
  chelsea, rocket) under styles 1, 3, 7 and a 3+7 blend, at 640×480 and 1280×720;
- speed: fp32 and every int8 variant run in turn, round after round (interleaved, so the other work on
  a shared machine hits all alike), as the ratio fp32 ms / int8 ms per round, median over rounds.
With --sweep it also prints the one-conv-at-a-time sensitivity on guard photos (not held out).

Needs nncf (pip install nncf==3.4.0; e.g. into a --target folder on PYTHONPATH), ~5–10 min on 2 cores:
    PYTHONPATH=build/nncf-site python scripts/openvino_int8_eval.py --json docs/openvino-int8.json \
        --sheet docs/openvino-int8-sheet.png --sweep --profile --tried
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cpu_tuning import cpuinfo, usable_cores  # noqa: E402
from engine.frame.frames import from_output, to_input  # noqa: E402
from engine.metrics import psnr  # noqa: E402
from engine.styles.packs import StylePack  # noqa: E402

# skimage photos for calibration: none of the held-out photos (astronaut, coffee, chelsea/cat, rocket)
CALIBRATION_PHOTOS = ("immunohistochemistry", "hubble_deep_field", "retina", "stereo_motorcycle", "camera",
                      "coins", "colorwheel", "grass")
HELD_OUT_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
# the sensitivity sweep's photos (never the held-out ones; colorwheel, camera, retina and the motorcycle
# are calibration photos too)
GUARD_PHOTOS = ("colorwheel", "clock", "camera", "retina", "stereo_motorcycle", "moon")
# Kept in fp32: the sweep's most sensitive convs, in order, until every guard photo was ≥ 37 dB
RECIPE_FLOAT = ("contract.0", "contract.1", "res.0.0", "contract.2", "res.1.0", "res.0.1", "res.1.1", "res.2.0",
                "res.3.1", "res.3.0", "res.2.1")


def photo(name: str, width: int, height: int) -> np.ndarray:
    """A scikit-image sample as an RGB uint8 frame of this size (grey ones as grey RGB)."""
    import cv2
    from skimage import data

    image = getattr(data, name)()
    image = image[0] if isinstance(image, tuple) else image
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = np.ascontiguousarray(image[:, :, :3])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def conv_names(model) -> list[str]:
    return [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]


def conv_layers(model) -> list[str]:
    """The convs by layer name ("contract.0", "res.2.1", "expand.2")."""
    return [n.split("/")[-2] for n in conv_names(model)]


def quantize(pack, float_convs=(), *, fp32_model=None, width=640, height=480, frames_per_style=1,
             overflow_fix="enable", preset="performance", activations_range=None,
             ignore_types=("MatMul", "MVN", "Multiply", "Add")):
    """The fp32 OpenVINO model with every conv but ``float_convs`` (layer names like "contract.1")
    quantized to int8, calibrated on CALIBRATION_PHOTOS at this size under every style.

    Only conv inputs are quantized: the γ/β MatMuls, the instance norms (MVN) and their Multiply/Add are
    ignored by type (quantizing them as NNCF does by default: 15–25 dB). ``overflow_fix="enable"``: 7-bit
    weights, which AVX2 without VNNI needs (its u8×s8 pairs add up in saturating int16; "disable" fell
    to 15–17 dB). Defaults otherwise: symmetric per-channel weights, activations by the mean of per-sample
    min/max ("performance" preset)."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    from engine.backends.export import cached_onnx

    model = fp32_model if fp32_model is not None else ov.Core().read_model(str(cached_onnx(pack, cpu_layout=True)))
    names = conv_names(model)
    wanted = {n for n in names if any(n == f or n.endswith(f"/{f}/Conv") for f in float_convs)}
    frames = [to_input(photo(p, width, height), pack.config.downsample) for p in CALIBRATION_PHOTOS]
    vectors = pack.calibration_vectors()
    items = [{"image": frames[(s * frames_per_style + k) % len(frames)], "style_weights": v}
             for s, v in enumerate(vectors) for k in range(frames_per_style)]
    scope = nncf.IgnoredScope(names=sorted(wanted), types=list(ignore_types), validate=False)
    ranges = getattr(RangeEstimatorParametersSet, activations_range) if activations_range else None
    advanced = AdvancedQuantizationParameters(overflow_fix=OverflowFix(overflow_fix),
                                              activations_range_estimator_params=ranges)
    return nncf.quantize(model, nncf.Dataset(items), preset=nncf.QuantizationPreset(preset),
                         subset_size=len(items), ignored_scope=scope,
                         advanced_parameters=advanced)


def keep_in_float(qmodel, fp32_model, convs):
    """A copy of the quantized model with these convs back in fp32: their input's FakeQuantize bypassed
    and their fp32 weights restored (the sensitivity scan: one quantization, any mix of float layers)."""
    import openvino as ov

    model = qmodel.clone()
    fp32_weights = {op.get_friendly_name(): op.input_value(1).get_node().get_data()
                    for op in fp32_model.get_ordered_ops() if op.get_type_name() == "Convolution"}
    for op in model.get_ordered_ops():
        name = op.get_friendly_name()
        if op.get_type_name() != "Convolution" or not any(name == c or name.endswith(f"/{c}/Conv") for c in convs):
            continue
        pad = op.input(0).get_source_output().get_node()
        port = pad.input(0) if pad.get_type_name() == "Pad" else op.input(0)
        fq = port.get_source_output().get_node()
        if fq.get_type_name() == "FakeQuantize":
            port.replace_source_output(fq.input_value(0))
        op.input(1).replace_source_output(ov.opset13.constant(fp32_weights[name]).output(0))
    model.validate_nodes_and_infer_types()
    return model


STYLES = {"1": 1, "3": 3, "7": 7, "3+7": {3: 0.5, 7: 0.5}}
SIZES = ((640, 480), (1280, 720))
TORCH_SET = ("contract.0", "contract.1", "contract.2", "res.0.0", "res.0.1", "res.1.0", "res.1.1", "res.2.0",
             "res.2.1")  # torch-cpu-int8's FLOAT_LAYERS, and the first conv (int8 gains nothing there, below)
VARIANTS = {  # name → convs kept in fp32
    "all int8 (the issue's trial)": (),
    "first conv in fp32": ("contract.0",),
    "torch-cpu-int8's float set + first conv": TORCH_SET,
    "recipe: 11 convs in fp32 (≥ 37 dB on the guard photos)": RECIPE_FLOAT,
}


def compile_for(core, model, h, w, threads):
    m = model.clone()
    m.reshape({"image": [1, 3, h, w], "style_weights": [26]})
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
    return core.compile_model(m, "CPU", config).create_infer_request()


def fidelity(pack, requests, h, w, photos):
    """{variant: {photo: {style: dB}}} against requests["fp32"]."""
    out = {name: {} for name in requests if name != "fp32"}
    for p in photos:
        x = to_input(photo(p, w, h), pack.config.downsample)
        for label, spec in STYLES.items():
            feed = {"image": x, "style_weights": pack.weights(spec)}
            ref = from_output(requests["fp32"].infer(feed)[0], h, w)
            for name in out:
                got = from_output(requests[name].infer(feed)[0], h, w)
                out[name].setdefault(p, {})[label] = round(psnr(got, ref), 2)
    return out


def speed(pack, requests, h, w, rounds):
    """Every model once per round, the order rotated each round; per variant the median over rounds of
    fp32 ms / its ms, and the medians of both."""
    x = to_input(photo("astronaut", w, h), pack.config.downsample)
    feed = {"image": x, "style_weights": pack.weights(7)}
    names = list(requests)
    for name in names:  # warm-up
        for _ in range(2):
            requests[name].infer(feed)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            requests[name].infer(feed)
            times[name].append(time.perf_counter() - t)
    fp32 = times["fp32"]
    return {name: {"ms_median": round(1e3 * statistics.median(t), 1),
                   "fp32_ms_median": round(1e3 * statistics.median(fp32), 1),
                   "ratio_median": round(statistics.median(a / b for a, b in zip(fp32, t)), 3),
                   "ratio_quartiles": [round(q, 3) for q in np.percentile([a / b for a, b in zip(fp32, t)], [25, 75])]}
            for name, t in times.items() if name != "fp32"}


def profile(pack, core, models, threads, runs=5):
    """ms per conv layer and per op type (OpenVINO's PERF_COUNT, mean of ``runs``) at 640×480, for each model."""
    h, w = 480, 640
    feed = {"image": to_input(photo("astronaut", w, h), pack.config.downsample), "style_weights": pack.weights(7)}
    out = {}
    for name, model in models.items():
        m = model.clone()
        m.reshape({"image": [1, 3, h, w], "style_weights": [26]})
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
                  "PERF_COUNT": True}
        r = core.compile_model(m, "CPU", config).create_infer_request()
        r.infer(feed)
        convs, types = {}, {}
        for _ in range(runs):
            r.infer(feed)
            for p in r.profiling_info:
                ms = p.real_time.total_seconds() * 1e3 / runs
                types[p.node_type] = types.get(p.node_type, 0.0) + ms
                if p.node_type == "Convolution":
                    key = f"{p.node_name.split('/')[-2]} ({p.exec_type})"
                    convs[key] = convs.get(key, 0.0) + ms
        out[name] = {"total_ms": round(sum(types.values()), 1),
                     "by_type_ms": {k: round(v, 1) for k, v in sorted(types.items(), key=lambda kv: -kv[1]) if v >= 0.05},
                     "convs_ms": {k: round(v, 1) for k, v in convs.items()}}
        print(f"profile {name}: {out[name]['total_ms']} ms; convs " +
              ", ".join(f"{k} {v}" for k, v in out[name]["convs_ms"].items()), flush=True)
    return out


def sweep(pack, core, fp32, qall, threads):
    """One conv at a time in int8 (all others fp32), min PSNR over styles per guard photo, 640×480."""
    h, w = 480, 640
    ref = compile_for(core, fp32, h, w, threads)
    xs = {p: to_input(photo(p, w, h), pack.config.downsample) for p in GUARD_PHOTOS}
    vectors = [pack.weights(s) for s in (1, 3, 7, 17)] + [pack.weights({3: 0.5, 7: 0.5})]
    refs = {p: [from_output(ref.infer({"image": x, "style_weights": v})[0], h, w) for v in vectors] for p, x in xs.items()}
    layers = conv_layers(fp32)
    print("sensitivity (one conv in int8, min dB over styles 1/3/7/17/blend):", " ".join(p[:8] for p in GUARD_PHOTOS))
    rows = {}
    for layer in layers:
        r = compile_for(core, keep_in_float(qall, fp32, [c for c in layers if c != layer]), h, w, threads)
        rows[layer] = [round(min(psnr(from_output(r.infer({"image": xs[p], "style_weights": v})[0], h, w), ref)
                                 for v, ref in zip(vectors, refs[p])), 1) for p in GUARD_PHOTOS]
        print(f"  {layer:11s}", " ".join(f"{d:8.1f}" for d in rows[layer]), flush=True)
    return rows


SHORT = {"all int8 (the issue's trial)": "all int8", "first conv in fp32": "first conv fp32",
         "torch-cpu-int8's float set + first conv": "torch's float set", "recipe": "recipe (11 fp32)"}


def sheet(pack, core, models, threads, path):
    """Per row (rocket under style 3, the hardest held-out case; astronaut under the 3+7 blend): a 1:1
    crop of each model's 640×480 output, and under it |int8 − fp32| ×4, with each one's PSNR."""
    import cv2

    h, w = 480, 640
    crop = (slice(140, 340), slice(220, 420))
    blocks = []
    for p, spec in (("rocket", 3), ("astronaut", {3: 0.5, 7: 0.5})):
        x = to_input(photo(p, w, h), pack.config.downsample)
        outs = {name: from_output(compile_for(core, m, h, w, threads).infer(
            {"image": x, "style_weights": pack.weights(spec)})[0], h, w) for name, m in models.items()}
        top, bottom = [], []
        for name, y in outs.items():
            label = SHORT.get(name.split(":")[0], name)
            if name != "fp32":
                label += f" {psnr(y, outs['fp32']):.1f} dB"
            panel = np.ascontiguousarray(y[crop])
            diff = np.clip(np.abs(y[crop].astype(np.int16) - outs["fp32"][crop]) * 4, 0, 255).astype(np.uint8)
            for img, text in ((panel, label), (diff, "|diff| x4")):
                cv2.rectangle(img, (0, 0), (199, 22), (0, 0, 0), -1)
                cv2.putText(img, text, (3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
            top.append(panel)
            bottom.append(diff)
        blocks += [np.hstack(top), np.hstack(bottom)]
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(blocks), cv2.COLOR_RGB2BGR))


TRIED = {  # quantization settings tried beside the defaults (fidelity only)
    "norms' Multiply/Add quantized too": {"ignore_types": ("MatMul", "MVN")},
    "overflow fix off (8-bit weights)": {"overflow_fix": "disable"},
    "mixed preset (asymmetric activations)": {"preset": "mixed"},
    "activations: global min/max": {"activations_range": "MINMAX"},
    "activations: histogram": {"activations_range": "HISTOGRAM"},
    "2 calibration frames per style": {"frames_per_style": 2},
}


def tried(pack, core, fp32, threads):
    """Worst held-out dB at 640×480 of the quantization settings in TRIED, with all convs in int8 and
    with torch-cpu-int8's float set; the defaults first."""
    h, w = 480, 640
    out = {}
    for label, kwargs in {"defaults": {}, **TRIED}.items():
        out[label] = {}
        for base, convs in (("all int8", ()), ("torch's float set", TORCH_SET)):
            requests = {"fp32": compile_for(core, fp32, h, w, threads),
                        "q": compile_for(core, quantize(pack, convs, fp32_model=fp32, **kwargs), h, w, threads)}
            fid = fidelity(pack, requests, h, w, HELD_OUT_PHOTOS)["q"]
            out[label][base] = {p: min(s.values()) for p, s in fid.items()}
        print(f"  {label:40s}" + "  ".join(f"{b}: worst {min(d.values()):.1f} dB" for b, d in out[label].items()),
              flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sheet", type=Path)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--tried", action="store_true", help="other quantization settings (fidelity, 640×480)")
    ap.add_argument("--sheet-only", action="store_true", help="quantize and draw --sheet, measure nothing")
    ap.add_argument("--profile", action="store_true", help="per-layer times (PERF_COUNT), fp32 and all-int8, 640×480")
    ap.add_argument("--runs", type=int, default=3, help="speed runs per size (each: --rounds interleaved rounds)")
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()

    import nncf
    import openvino as ov

    from engine.backends.export import cached_onnx

    pack = StylePack.load()
    core = ov.Core()
    threads = usable_cores()
    fp32 = core.read_model(str(cached_onnx(pack, cpu_layout=True)))
    info = cpuinfo()
    flags = info.get("flags", "").split()
    machine = {"cpu": info.get("model name"), "family": info.get("cpu family"), "model": info.get("model"),
               "threads": threads, "vector_flags": [f for f in flags if f.startswith(("avx", "fma", "amx")) or "vnni" in f],
               "vnni": any("vnni" in f for f in flags), "python": platform.python_version(),
               "openvino": ov.__version__.split("-")[0], "nncf": nncf.__version__}
    print("machine:", json.dumps(machine), flush=True)
    t = time.perf_counter()
    models = {}
    qall = None
    for name, float_convs in VARIANTS.items():  # the real path for each: NNCF with these convs ignored
        models[name] = quantize(pack, float_convs, fp32_model=fp32)
        qall = qall or models[name]
    print(f"quantized {len(models)} variants in {time.perf_counter() - t:.0f} s", flush=True)
    if args.sheet_only:
        sheet(pack, core, {"fp32": fp32, **models}, threads, args.sheet)
        return
    result = {"machine": machine, "variants": {n: list(c) for n, c in VARIANTS.items()}, "sizes": {}}
    if args.sweep:
        result["sensitivity_640x480"] = {"photos": list(GUARD_PHOTOS), "rows": sweep(pack, core, fp32, qall, threads)}
    if args.tried:
        result["tried_640x480"] = tried(pack, core, fp32, threads)
    if args.profile:
        result["profile_640x480"] = profile(pack, core, {"fp32": fp32, "all int8": qall,
                                                         "recipe": models[list(VARIANTS)[-1]]}, threads)
    for w, h in SIZES:
        requests = {"fp32": compile_for(core, fp32, h, w, threads)}
        requests.update({n: compile_for(core, m, h, w, threads) for n, m in models.items()})
        fid = fidelity(pack, requests, h, w, HELD_OUT_PHOTOS)
        runs = [speed(pack, requests, h, w, args.rounds) for _ in range(args.runs)]
        size = f"{w}x{h}"
        result["sizes"][size] = {"fidelity": fid, "speed_runs": runs}
        print(f"\n{size}:")
        for name in models:
            worst = min(min(s.values()) for s in fid[name].values())
            per_photo = " ".join(f"{p[:6]} {min(s.values()):.1f}" for p, s in fid[name].items())
            ratios = " ".join(f"{r[name]['ratio_median']:.2f}×" for r in runs)
            ms = " ".join(f"{r[name]['fp32_ms_median']:.0f}/{r[name]['ms_median']:.0f}" for r in runs)
            print(f"  {name}\n    worst {worst:.1f} dB ({per_photo})\n    fp32/int8 {ratios} (ms {ms})", flush=True)
        del requests
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.sheet:
        sheet(pack, core, {"fp32": fp32, **models}, threads, args.sheet)


if __name__ == "__main__":
    main()
