"""`torch-cpu-int8`: int8 convolutions (VNNI) where they keep fidelity, bf16 (or fp32) elsewhere, compiled.

Recipe (reproducible, nothing opaque is shipped): our StyleNet, wrapped so uint8 frames go in and
out (the conversions fuse into the first and last kernels), is exported with torch.export, the x86
Inductor quantizer from torchao annotates it (static activations, per-channel weights), the layers
that lose fidelity stay out of int8 — the two stride-2 convs and the first three residual blocks,
which a per-layer sensitivity scan (docs/performance.md) found to be the noisiest when quantized —
and run in bf16 where the CPU has it; the observers are calibrated on scikit-image photos under all
26 styles, and the result is compiled with weight freezing. Not bf16 autocast over the whole graph:
that made it slower (casts around every int8 conv) and export pins dtypes anyway.
One model is built per input size (calibrate, check, compile ahead of time: 30–60 s on 2 cores), in
the build process (build_worker.py: compiling beside compiled inference in one process corrupts
PyTorch's tracing state), as an AOTInductor package in the compiled-model cache (compiled_cache.py).
The live process only loads packages (milliseconds), so a relaunch starts on int8 at once.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from concurrent.futures import Future

import numpy as np

from ..cpu_tuning import cpu_flags, has_fast_bf16, hidden_note, tune_process
from ..errors import BackendUnavailable
from ..frame.frames import check_frame
from ..metrics import psnr
from .aoti_runner import AotiRunner
from .base import Backend, BackendOptions
from .build_worker import BuildWorker
from .compiled_cache import CompiledKey, discard, publish, usable

log = logging.getLogger(__name__)
FLOAT_LAYERS = ("contract.1", "contract.2") + tuple(f"res.{b}.{i}" for b in range(3) for i in range(2))
CALIBRATION_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
FRAMES_PER_STYLE = 2
# The quality guard: after calibrating, PSNR against fp32 on a photo not used for calibration under
# the styles int8 finds hardest; below GUARD_DB the next most sensitive layers leave int8 and it
# tries again (larger frames need more of them: 1280×720 fell to 34.6 dB with FLOAT_LAYERS alone).
GUARD_PHOTO = "retina"  # the hardest of the held-out photos tried (dark, smooth)
GUARD_STYLES = (3, 15, 17, 19)
GUARD_DB = 36.5
ESCALATION = (("res.3.0", "res.3.1"), ("res.4.0", "res.4.1"), ("expand.0", "res.5.0", "res.5.1"))
RECIPE = "int8-aoti-1"  # bump when what build_package makes changes: old cache entries then miss


def calibration_frames(height: int, width: int) -> list[np.ndarray]:
    import cv2
    from skimage import data

    return [cv2.resize(getattr(data, name)(), (width, height), interpolation=cv2.INTER_AREA)
            for name in CALIBRATION_PHOTOS]


def quantize(pack, height: int, width: int, float_layers=FLOAT_LAYERS, float_bf16: bool | None = None):
    """The int8 graph module for frames of this size (calibrated, not yet compiled); the layers kept
    out of int8 run in bf16 when the CPU has it (``float_bf16=None``)."""
    import torch
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from .conv_rewrites import convs_in
    from .framed import FramedStyleNet

    net = pack.build()
    net.set_native_norm(True)
    modules = dict(net.named_modules())
    float_layers = tuple(n for n in float_layers if n in modules)  # the picture network has fewer blocks
    if float_bf16 is None:
        float_bf16 = has_fast_bf16()
    if float_bf16:  # bf16 alone keeps ≥ 44 dB
        convs_in(net, float_layers, torch.bfloat16)
    framed = FramedStyleNet(net, planes=True)  # a space-to-depth network's depth-to-space: as_frame, after
    frames = [torch.from_numpy(f) for f in calibration_frames(height, width)]
    vectors = [torch.from_numpy(v) for v in pack.calibration_vectors()]
    example = (frames[0], vectors[0])
    with torch.no_grad():
        graph = torch.export.export(framed, example, strict=True).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        for name in float_layers:
            quantizer.set_module_name_qconfig(f"net.{name}", None)
        prepared = prepare_pt2e(graph, quantizer)
        for style, vector in enumerate(vectors):  # activations differ per style: calibrate under all of them
            for k in range(FRAMES_PER_STYLE):
                prepared(frames[(style + k) % len(frames)], vector)
        return convert_pt2e(prepared)


def guard(pack, height: int, width: int):
    """A check ``model → worst PSNR (dB) against fp32`` over GUARD_STYLES on the guard photo; the
    fp32 references are computed once, however many models it checks."""
    import cv2
    import torch
    from skimage import data

    from .framed import FramedStyleNet

    photo = getattr(data, GUARD_PHOTO)()
    photo = photo[0] if isinstance(photo, tuple) else photo
    frame = torch.from_numpy(cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA))
    reference = FramedStyleNet(pack.build())
    vectors = pack.calibration_vectors()
    styles = [s for s in GUARD_STYLES if s < len(vectors)] or range(len(vectors))
    with torch.no_grad():
        refs = [(w, reference(frame, w).numpy()) for w in (torch.from_numpy(vectors[s]) for s in styles)]

    def worst_db(model) -> float:
        with torch.no_grad():
            return min(psnr(as_frame(pack, model(frame, w).numpy(), height, width), ref) for w, ref in refs)
    return worst_db


def as_frame(pack, y: np.ndarray, height: int, width: int) -> np.ndarray:
    """The int8 model's output as an H×W×3 frame (a space-to-depth network's comes as planes)."""
    from .depth_to_space import depth_to_space

    s = pack.config.space_to_depth
    return y if s == 1 else depth_to_space(y, s, height, width)


def guarded_quantize(pack, height: int, width: int):
    """quantize(), moving layers out of int8 until the guard passes (or none are left to move)."""
    check = guard(pack, height, width)
    layers = FLOAT_LAYERS
    for extra in ((), *ESCALATION):
        layers = layers + extra
        model = quantize(pack, height, width, layers)
        db = check(model)
        if db >= GUARD_DB:
            break
        log.warning("int8 at %dx%d: %.1f dB on the guard photo, keeping more layers in float", width, height, db)
    log.info("int8 at %dx%d: %.1f dB on the guard photo with %d layers in float", width, height, db, len(layers))
    return model


def build_package(pack, height: int, width: int, key: CompiledKey) -> dict:
    """In the build process: quantize (guarded), export and compile ahead of time into the cache."""
    import torch
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    t = time.perf_counter()
    model = guarded_quantize(pack, height, width)
    example = (torch.zeros((height, width, 3), dtype=torch.uint8), torch.from_numpy(pack.calibration_vectors()[0]))
    final = key.path()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.stem}.{os.getpid()}.tmp.pt2")
    try:
        with torch.no_grad():
            program = torch.export.export(model, example, strict=False)
            torch._inductor.aoti_compile_and_package(program, package_path=str(tmp))
        publish(tmp, key)
    finally:
        tmp.unlink(missing_ok=True)
    return {"path": str(final), "seconds": time.perf_counter() - t, "pid": os.getpid()}


MIN_FREE_MB = 500  # an int8 build's Inductor files and its package, with room to spare


def build_tools_missing() -> str | None:
    """What an int8 build needs and this machine lacks, found without building: AOTInductor compiles
    C++ (the compiler PyTorch would use: $CXX, else g++, clang++ on macOS, cl on Windows), and the
    package goes to the compiled-model cache, which must be writable with room to spare. Without this
    check every build failed, one after the other, while the stand-in ran the frames."""
    import shutil
    import sys
    import tempfile

    from ..paths import cache_dir

    default = {"darwin": "clang++", "win32": "cl"}.get(sys.platform, "g++")
    cxx = os.environ.get("CXX") or default
    if shutil.which(cxx) is None:
        return f"int8 compiles C++ (AOTInductor) and there is no C++ compiler here ({cxx} not found; install " \
               f"{default}, or set CXX)"
    folder = cache_dir() / "compiled"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return f"the compiled-model cache {folder} is not writable ({exc.strerror or exc})"
    if free < MIN_FREE_MB * 2**20:
        return f"the compiled-model cache {folder} has {free / 2**20:.0f} MB free; an int8 build needs {MIN_FREE_MB} MB"
    return None


class TorchInt8Backend(Backend):
    """Frames go in and come out as uint8 tensors: pre/post-processing is inside the graph, but for the
    depth-to-space of a space-to-depth network (``as_frame``: fused in, it was a third of the time).
    ``options.builder``: the session's build process (one for all networks); without one the backend
    starts its own."""

    name = "torch-cpu-int8"
    compiled = True

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchao") is None:
            return "int8 needs PyTorch and torchao (pip install torchao)"
        if not {"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags():
            return "this CPU has no int8 dot-product units (VNNI/AMX)" + hidden_note()
        return build_tools_missing()

    def __init__(self, *, pack, options: BackendOptions = BackendOptions()):
        super().__init__(pack=pack, options=options)
        why = self.unavailable_reason()
        if why:
            raise BackendUnavailable(why)
        import torch

        tune_process()
        if options.threads:
            torch.set_num_threads(options.threads)
        self.torch = torch
        self._own_builder = options.builder is None
        self.builder: BuildWorker = options.builder or BuildWorker()
        self._models: dict[tuple[int, int], object] = {}
        self._lock = threading.Lock()  # frames read the models while a warm-up thread loads a new size
        # every frame's result names what ran it: said once, not worked out again per frame
        self._described = f"{self.name} (int8 + {'bf16' if has_fast_bf16() else 'fp32'}, compiled, uint8 in/out fused)"

    def describe(self) -> str:
        return self._described

    def key(self, height: int, width: int) -> CompiledKey:
        return CompiledKey.make(self.pack, RECIPE, height, width)

    @classmethod
    def ready(cls, pack, height: int, width: int) -> bool:
        return usable(CompiledKey.make(pack, RECIPE, height, width))

    def ready_for(self, height: int, width: int) -> bool:
        with self._lock:
            if (height, width) in self._models:
                return True
        return self.ready(self.pack, height, width)

    @classmethod
    def prebuild(cls, pack, height: int, width: int, builder: BuildWorker) -> Future | None:
        key = CompiledKey.make(pack, RECIPE, height, width)
        if usable(key):
            return None
        return builder.submit(key.hash, build_package, pack, height, width, key)

    def _load(self, key: CompiledKey):
        """The package's model as ``(frame, weights) → frame``: through its C interface, which frees the GIL
        while it runs (aoti_runner.py), else PyTorch's C++ package loader directly
        (``torch._inductor.aoti_load_package`` imports Inductor first: a second of a relaunch's start)."""
        path = key.path()
        if not usable(key):
            return None
        try:
            runner = AotiRunner(path, self.torch)
            return lambda x, w: runner([x, w])[0]
        except (ValueError, OSError, AttributeError) as exc:
            log.info("int8 model %s runs through PyTorch's loader, which holds the GIL: %s", path.name, exc)
        try:
            loader = self.torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)
            return lambda x, w: loader.run([x, w])[0]
        except (AttributeError, TypeError):  # another PyTorch: its Python loader
            import torch._inductor  # noqa: F401

            return self.torch._inductor.aoti_load_package(str(path))
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: rebuild it
            discard(key, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None

    def model_for(self, height: int, width: int):
        with self._lock:
            model = self._models.get((height, width))
        if model is not None:
            return model
        key = self.key(height, width)
        model = self._load(key)
        if model is None:
            t = time.perf_counter()
            log.warning("building the int8 model for %dx%d in the build process (once per size, then cached)",
                        width, height)
            self.builder.submit(key.hash, build_package, self.pack, height, width, key).result()
            model = self._load(key)
            if model is None:
                raise BackendUnavailable(f"the int8 build for {width}x{height} left no loadable model")
            log.info("int8 model for %dx%d built in %.1fs", width, height, time.perf_counter() - t)
        with self._lock:
            return self._models.setdefault((height, width), model)

    def preprocess(self, frame: np.ndarray):
        check_frame(frame)
        return self.torch.from_numpy(np.ascontiguousarray(frame))

    def infer(self, x, style_weights: np.ndarray):
        model = self.model_for(x.shape[0], x.shape[1])
        w = self.torch.from_numpy(self.check_weights(style_weights))
        with self.torch.no_grad():
            y = model(x, w)
        return y[0] if isinstance(y, (list, tuple)) else y

    def postprocess(self, y, height: int, width: int) -> np.ndarray:
        return as_frame(self.pack, y.numpy(), height, width)

    def _release(self) -> None:
        with self._lock:
            self._models.clear()
        if self._own_builder:
            self.builder.close()
