"""Distil the full stock network into a slim student with the same CIN interface (the 26 styles).

Teacher: the stock network (``StylePack.load().build()``). Student: a smaller StyleNetConfig (see
``SLIM_CONFIG``: space-to-depth input, first/last convs at half resolution, fewer residual blocks),
its CIN tables one row per stock style, so a style vector (one-hot or a blend) means the same to both
and blends stay linear in the tables.

Each step: random ~256 px crops of the training photos, a random style vector per sample (mostly
one-hot, some blends of two), the teacher's output as the target. Loss = L1 on pixels + hints
(student features after the contract and residual stages vs the teacher's, which line up by design)
+ VGG16 relu2_2/relu3_3 feature MSE and a small Gram term on native-scale patches of the outputs.

Held out for evaluation (never trained on): scikit-image's astronaut, chelsea (and ``cat``, the
same photo), coffee, rocket and stereo_motorcycle.
"""
from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.model.config import StyleNetConfig
from engine.model.stylenet import StyleNet

log = logging.getLogger(__name__)

# The shipped student: pixel-unshuffle by 2, a 3×3 12→32 conv at 1/2 resolution, one stride-2 conv
# to the 1/4-resolution trunk (as the stock network), 3 residual blocks instead of 6, one ×2 upsample
# + 3×3 32→8 conv, and a 3×3 8→12 conv at 1/2 resolution pixel-shuffled to RGB.
SLIM_CONFIG = StyleNetConfig(contract=(32, 32), residual_blocks=3, expand=(8,), big_kernel=3, space_to_depth=2)

HELD_OUT = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")
TRAIN_PHOTOS = ("hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "logo", "camera", "brick",
                "grass", "gravel", "moon", "page", "text", "coins", "cell", "clock")


@dataclass(frozen=True)
class DistillSettings:
    steps: int = 6000
    batch: int = 4
    crop: int = 256
    lr: float = 1e-3
    lr_end: float = 2e-5  # cosine decay to this
    blend_fraction: float = 0.3  # samples whose style is a random blend of two styles
    hint_weight: float = 0.05  # relative MSE of contract/trunk features vs the teacher's
    perceptual_weight: float = 0.05  # relative MSE of VGG relu2_2 + relu3_3 features
    gram_weight: float = 0.02  # relative MSE of the Gram matrices of ``gram_layers``
    # relu1_2 carries the fine texture and local colour statistics that the evaluation's style loss
    # is dominated by (a blurred student loses them first).
    gram_layers: str = "relu2_2,relu3_3"
    vgg_samples: int = 2  # samples of the batch that go through VGG
    vgg_patch: int = 128  # side of the native-scale patch VGG sees (cost: VGG dominates a step)
    # The evaluation's style loss (scripts/slim_eval.py: absolute Gram MSE over relu1_2…relu4_3 of
    # whole pictures) is almost all relu1_2 (its Gram entries are ~100× relu2_2's, ~10⁴× relu3_3's).
    # This term matches the student's relu1_2 Gram to the teacher's over whole crops (not a patch),
    # per sample relative (each style's statistics count alike, as in the per-style ratio); only
    # VGG's first two convs run for it.
    fine_gram_weight: float = 0.0
    fine_gram_samples: int = 4  # samples of the batch (whole crops) for the relu1_2 Gram term
    # The LR schedule (warm-up, then cosine to lr_end at ``steps``) starts at this step: a resumed
    # phase can restart it (a warm restart) instead of continuing the earlier phases' schedule.
    schedule_start: int = 0
    warmup: int = 100
    # which validation figure picks best.pt: "l1" (L1 to the teacher) or "gram" (relative relu1_2
    # Gram MSE to the teacher's on the whole validation crops, per crop; closer to the evaluation).
    # When a phase changes it, the best so far is forgotten (the figures do not compare).
    best_metric: str = "l1"
    # A per-style phase: train only the CIN γ/β tables (the shared convs frozen), on these styles
    # alone (comma-separated ids; empty: all). A style's rows touch no other style, so styles already
    # within the quality floor stay exactly as they are.
    rows_only: bool = False
    styles: str = ""
    # With ``rows_only``: each trained style keeps its rows from the validation at which its own
    # relu1_2 Gram distance (one-hot, on ``style_validation_crops`` crops) was lowest, the phase's
    # starting rows included. One aggregate best checkpoint lets some styles get worse while others
    # improve; rows are per style, so each can be picked on its own (``best_rows.pt``).
    per_style_best: bool = False
    style_validation_crops: int = 4
    seed: int = 0
    checkpoint_every: int = 100
    validate_every: int = 250
    validation_crops: int = 8


def held_out_photos() -> dict[str, np.ndarray]:
    from skimage import data

    out = {}
    for name in HELD_OUT:
        img = getattr(data, name)()
        out[name] = img[0] if isinstance(img, tuple) else img
    return out


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:  # over white
        a = img[..., 3:].astype(np.float32) / 255.0
        img = (img[..., :3] * a + 255.0 * (1 - a)).astype(np.uint8)
    return np.ascontiguousarray(img[..., :3].astype(np.uint8))


def training_photos(content_dir: Optional[Path] = None) -> list[np.ndarray]:
    """scikit-image's photos but the held-out ones (greyscale ones as RGB), plus a folder's pictures."""
    from engine.training.fit_row import content_photos

    return [_rgb(p) for p in content_photos(content_dir, TRAIN_PHOTOS)]


def sample_crops(photos: list[np.ndarray], n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """n random square crops (random photo, scale 0.35–1 of the short side, random flip) → [n,3,s,s]."""
    out = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        img = photos[rng.integers(len(photos))]
        h, w = img.shape[:2]
        side = max(min(size // 2, h, w), int(min(h, w) * rng.uniform(0.35, 1.0)))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = img[y:y + side, x:x + side]
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = crop.transpose(2, 0, 1) / 255.0
    return out


def sample_styles(n: int, num_styles: int, blend_fraction: float, rng: np.random.Generator,
                  ids: Optional[list[int]] = None) -> np.ndarray:
    """[n, num_styles]: one-hot rows, and a ``blend_fraction`` of random two-style blends (of ``ids``
    only, when given)."""
    w = np.zeros((n, num_styles), np.float32)
    if ids is not None:
        for i in range(n):
            pick = rng.choice(ids, size=2, replace=False) if len(ids) > 1 else [ids[0]] * 2
            a, b = int(pick[0]), int(pick[1])
            if a != b and rng.random() < blend_fraction:
                t = rng.uniform(0.15, 0.85)
                w[i, a], w[i, b] = t, 1 - t
            else:
                w[i, a] = 1.0
        return w
    for i in range(n):
        a = rng.integers(num_styles)
        if rng.random() < blend_fraction:
            b = (a + 1 + rng.integers(num_styles - 1)) % num_styles
            t = rng.uniform(0.15, 0.85)
            w[i, a], w[i, b] = t, 1 - t
        else:
            w[i, a] = 1.0
    return w


def forward_taps(net: StyleNet, image: torch.Tensor, style_weights: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """StyleNet.forward, also returning the features after the contract and residual stages."""
    s = net.config.space_to_depth
    x = image if s == 1 else F.pixel_unshuffle(image, s)
    for layer in net.contract:
        x = layer(x, style_weights)
    taps = {"contract": x}
    for block in net.res:
        x = block(x, style_weights)
    taps["trunk"] = x
    for layer in net.expand:
        x = layer(x, style_weights)
    if s != 1:
        x = F.pixel_shuffle(x, s)
    return torch.sigmoid(x), taps


def _copy_conv(dst, src) -> None:
    dst.w.data.copy_(src.w.data)
    if dst.norm is not None and src.norm is not None:
        dst.norm.gamma.data.copy_(src.norm.gamma.data)
        dst.norm.beta.data.copy_(src.norm.beta.data)


def pick_blocks(teacher: StyleNet, count: int, x: torch.Tensor, w: torch.Tensor) -> tuple[int, ...]:
    """The ``count`` teacher residual blocks whose chain alone is closest to the full network's output."""
    full = teacher(x, w)
    best, best_err = None, float("inf")
    blocks = list(teacher.res)
    for keep in itertools.combinations(range(len(blocks)), count):
        teacher.res = torch.nn.ModuleList(blocks[i] for i in keep)
        err = (teacher(x, w) - full).abs().mean().item()
        if err < best_err:
            best, best_err = keep, err
    teacher.res = torch.nn.ModuleList(blocks)
    log.info("student residual blocks from teacher blocks %s (L1 %.4f when the others are dropped)", best, best_err)
    return best


def init_student(student: StyleNet, teacher: StyleNet, rng: np.random.Generator,
                 probe: Optional[torch.Tensor] = None) -> dict:
    """Copy what lines up from the teacher; returns what was copied.

    The student's stride-2 contract convs and the teacher's last ones work at the same resolutions
    (space-to-depth takes the place of the first teacher conv(s)); the trunk keeps a subset of the
    teacher's residual blocks (the subset that hurts least when the rest are dropped); the expand
    convs before the last line up from the back. CIN γ/β of a layer without a teacher twin start
    from the teacher layer with the same channel count at the same resolution; the last layer's
    start from the teacher's last, repeated for each of the s² pixel-shuffle phases.
    """
    sc, tc = student.config, teacher.config
    info: dict = {"copied": []}
    with torch.no_grad():
        # contract: align from the back
        offset = len(tc.contract) - len(sc.contract)
        for i, layer in enumerate(student.contract):
            src = teacher.contract[i + offset]
            if layer.w.shape == src.w.shape:
                _copy_conv(layer, src)
                info["copied"].append(f"contract.{i} <- contract.{i + offset}")
            elif layer.norm is not None and layer.norm.gamma.shape == src.norm.gamma.shape:
                layer.norm.gamma.copy_(src.norm.gamma)
                layer.norm.beta.copy_(src.norm.beta)
                info["copied"].append(f"contract.{i}.norm <- contract.{i + offset}.norm")
        # residual blocks
        if sc.contract[-1] == tc.contract[-1] and sc.residual_blocks <= tc.residual_blocks:
            if probe is None:
                g = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
                probe = torch.rand(2, 3, 128, 128, generator=g)
            w = torch.from_numpy(sample_styles(probe.shape[0], tc.num_styles, 0.0, rng))
            keep = pick_blocks(teacher, sc.residual_blocks, probe, w)
            for i, j in enumerate(keep):
                _copy_conv(student.res[i][0], teacher.res[j][0])
                _copy_conv(student.res[i][1], teacher.res[j][1])
            info["residual_blocks_from"] = list(keep)
        # expand: align from the back, except the last conv
        s_mid, t_mid = list(student.expand)[:-1], list(teacher.expand)[:-1]
        for i, layer in enumerate(s_mid):
            j = i  # the teacher's first upsample convs work at the same resolutions as the student's
            if j < len(t_mid) and layer.w.shape == t_mid[j].w.shape:
                _copy_conv(layer, t_mid[j])
                info["copied"].append(f"expand.{i} <- expand.{j}")
        last_s, last_t = student.expand[-1], teacher.expand[-1]
        phases = sc.space_to_depth ** 2
        if last_s.norm.gamma.shape[1] == last_t.norm.gamma.shape[1] * phases:
            last_s.norm.gamma.copy_(last_t.norm.gamma.repeat_interleave(phases, dim=1))
            last_s.norm.beta.copy_(last_t.norm.beta.repeat_interleave(phases, dim=1))
            info["copied"].append(f"expand.{len(s_mid)}.norm <- expand.{len(t_mid)}.norm (x{phases} phases)")
    return info


def _rel_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MSE relative to the two tensors' mean square (a constant for the gradient): scale-free and
    at most 4, so a near-flat teacher output (tiny Gram matrices) cannot blow the term up."""
    scale = 0.5 * (a.detach().pow(2).mean() + b.pow(2).mean()) + 1e-8
    return F.mse_loss(a, b) / scale


def _rel_mse_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``_rel_mse`` of each sample (first dimension) on its own, averaged: a sample with large
    statistics (a dense, high-contrast style) does not drown the others."""
    dims = tuple(range(1, a.dim()))
    scale = 0.5 * (a.detach().pow(2).mean(dims) + b.pow(2).mean(dims)) + 1e-8
    return ((a - b).pow(2).mean(dims) / scale).mean()


class Distiller:
    """The training state: student, optimiser, step; checkpoints to ``cache``."""

    def __init__(self, teacher: StyleNet, student_config: StyleNetConfig, settings: DistillSettings,
                 photos: list[np.ndarray], cache: Path):
        from engine.training.vgg import Vgg16Features

        self.settings = settings
        self.cache = Path(cache)
        self.teacher = teacher.eval().requires_grad_(False)
        torch.manual_seed(settings.seed)
        self.rng = np.random.default_rng(settings.seed)
        self.student = StyleNet(student_config)
        self.photos = photos
        self.init_info = init_student(self.student, self.teacher, self.rng,
                                      torch.from_numpy(sample_crops(photos, 4, 128, self.rng)))
        self.vgg = Vgg16Features()
        self.style_ids = [int(i) for i in settings.styles.split(",") if i.strip()] or None
        self.opt = torch.optim.Adam(self._trained(), lr=settings.lr)
        self.step = 0
        self.phases: list[dict] = []  # one per train() call: the step it started at and its settings
        self.command = ""  # the command line, recorded with each phase
        self.history: list[dict] = []
        self.best: dict = {"loss": float("inf"), "step": 0}
        # a fixed validation set: crops of the training photos (the held-out photos stay unseen)
        vrng = np.random.default_rng(settings.seed + 1000)
        self.val_x = torch.from_numpy(sample_crops(photos, settings.validation_crops, settings.crop, vrng))
        self.val_w = torch.from_numpy(sample_styles(settings.validation_crops, student_config.num_styles, 0.25, vrng,
                                                    self.style_ids))
        with torch.no_grad():
            self.val_t = self.teacher(self.val_x, self.val_w)
        self._val_t_gram: Optional[torch.Tensor] = None
        if settings.per_style_best and not (settings.rows_only and self.style_ids):
            raise ValueError("per_style_best needs rows_only and a list of styles")
        self.style_val_x = torch.from_numpy(sample_crops(photos, settings.style_validation_crops, settings.crop,
                                                         np.random.default_rng(settings.seed + 2000)))
        self._style_val_t_gram: dict[int, torch.Tensor] = {}
        # style id -> {"step", "gram", "rows": {parameter name: that style's row}}
        self.best_rows: dict[int, dict] = {}

    def _trained(self) -> list[torch.nn.Parameter]:
        """What the optimiser moves: everything, or (``rows_only``) the CIN tables alone."""
        if not self.settings.rows_only:
            return list(self.student.parameters())
        self.student.requires_grad_(False)
        rows = [p for norm in self.student.norms() for p in (norm.gamma, norm.beta)]
        for p in rows:
            p.requires_grad_(True)
        return rows

    # --- checkpoints -------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"student": self.student.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "history": self.history, "best": self.best, "settings": asdict(self.settings),
                "phases": self.phases, "best_rows": self.best_rows,
                "config": self.student.config.to_dict(), "init": self.init_info}

    def save(self) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = self.cache / "last.pt.tmp"
        torch.save(self._state(), tmp)
        tmp.replace(self.cache / "last.pt")

    def resume(self) -> bool:
        path = self.cache / "last.pt"
        if not path.is_file():
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["config"] != self.student.config.to_dict():
            raise ValueError(f"{path} is a checkpoint of another student config; use another --cache")
        self.student.load_state_dict(state["student"])
        try:
            self.opt.load_state_dict(state["opt"])
        except ValueError:  # a phase that trains another set of parameters: its own optimiser
            log.warning("optimiser state not resumed (another set of parameters is trained): a fresh one")
        self.step = state["step"]
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.history = state["history"]
        self.best = state["best"]
        self.phases = state.get("phases") or [{"start": 0, "settings": state["settings"]}]
        self.best.setdefault("metric", "l1")
        self.best_rows = state.get("best_rows", {})
        self.init_info = state.get("init", self.init_info)
        log.warning("resumed from %s at step %d", path, self.step)
        return True

    # --- training ----------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        s = self.settings
        warm = s.warmup
        step, steps = step - s.schedule_start, s.steps - s.schedule_start
        if step < warm:
            return s.lr * (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, steps - warm))
        return s.lr_end + 0.5 * (s.lr - s.lr_end) * (1 + math.cos(math.pi * t))

    def _fine_gram(self, images: torch.Tensor) -> torch.Tensor:
        """Gram matrices of VGG's relu1_2 (fine texture, most of the evaluation's style loss): only its
        first two convs run."""
        from engine.training.vgg import gram

        return gram(self.vgg(images, ("relu1_2",))["relu1_2"])

    def losses(self, x: torch.Tensor, w: torch.Tensor, with_vgg: bool = True) -> dict[str, torch.Tensor]:
        s = self.settings
        with torch.no_grad():
            t_out, t_taps = forward_taps(self.teacher, x, w)
        out, taps = forward_taps(self.student, x, w)
        parts = {"l1": (out - t_out).abs().mean()}
        parts["hint"] = sum(_rel_mse(taps[k], t_taps[k]) for k in taps if taps[k].shape == t_taps[k].shape)
        if with_vgg and (s.perceptual_weight > 0 or s.gram_weight > 0):
            from engine.training.vgg import gram

            n, p = min(s.vgg_samples, x.shape[0]), min(s.vgg_patch, x.shape[-1])
            y0 = int(self.rng.integers(0, x.shape[-2] - p + 1))
            x0 = int(self.rng.integers(0, x.shape[-1] - p + 1))
            po, pt = out[:n, :, y0:y0 + p, x0:x0 + p], t_out[:n, :, y0:y0 + p, x0:x0 + p]
            layers = ("relu2_2", "relu3_3")
            gram_layers = tuple(s.gram_layers.split(","))
            needed = tuple(dict.fromkeys(layers + gram_layers))
            fo = self.vgg(po, needed)
            with torch.no_grad():
                ft = self.vgg(pt, needed)
            parts["perceptual"] = sum(_rel_mse(fo[k], ft[k]) for k in layers)
            parts["gram"] = sum(_rel_mse(gram(fo[k]), gram(ft[k])) for k in gram_layers)
        if with_vgg and s.fine_gram_weight > 0:
            n = min(s.fine_gram_samples, x.shape[0])
            with torch.no_grad():
                gt = self._fine_gram(t_out[:n])
            parts["fine_gram"] = _rel_mse_per_sample(self._fine_gram(out[:n]), gt)
        total = parts["l1"] + s.hint_weight * parts["hint"]
        if "perceptual" in parts:
            total = total + s.perceptual_weight * parts["perceptual"] + s.gram_weight * parts["gram"]
        if "fine_gram" in parts:
            total = total + s.fine_gram_weight * parts["fine_gram"]
        parts["total"] = total
        return parts

    def validate(self) -> dict[str, float]:
        self.student.eval()
        with torch.no_grad():
            out = self.student(self.val_x, self.val_w)
            l1 = (out - self.val_t).abs().mean().item()
            mse = ((out - self.val_t) ** 2).mean().item()
            row = {"val_l1": l1, "val_psnr": 10 * math.log10(1.0 / max(mse, 1e-12))}
            if self.settings.best_metric == "gram":
                if self._val_t_gram is None:
                    self._val_t_gram = self._fine_gram(self.val_t)
                row["val_gram"] = _rel_mse_per_sample(self._fine_gram(out), self._val_t_gram).item()
        self.student.train()
        return row

    def validate_styles(self) -> dict[str, float]:
        """Each trained style alone (one-hot) on the style validation crops: relu1_2 Gram distance to the
        teacher's; a style's rows are kept (``best_rows``) when it is its lowest so far."""
        self.student.eval()
        row = {}
        params = dict(self.student.named_parameters())
        with torch.no_grad():
            for sid in self.style_ids:
                w = torch.zeros(self.style_val_x.shape[0], self.student.config.num_styles)
                w[:, sid] = 1.0
                if sid not in self._style_val_t_gram:
                    self._style_val_t_gram[sid] = self._fine_gram(self.teacher(self.style_val_x, w))
                value = _rel_mse_per_sample(self._fine_gram(self.student(self.style_val_x, w)),
                                            self._style_val_t_gram[sid]).item()
                row[f"val_gram_{sid}"] = value
                if value < self.best_rows.get(sid, {}).get("gram", float("inf")):
                    rows = {n: p[sid].detach().clone() for n, p in params.items() if n.endswith(("gamma", "beta"))}
                    self.best_rows[sid] = {"step": self.step, "gram": value, "rows": rows}
        self.student.train()
        return row

    def with_best_rows(self) -> dict[str, torch.Tensor]:
        """The student's state with each trained style's rows from its best validation."""
        state = {k: v.clone() for k, v in self.student.state_dict().items()}
        for sid, best in self.best_rows.items():
            for name, value in best["rows"].items():
                state[name][sid] = value
        return state

    def train(self, progress: Callable[[int, dict], None] = lambda step, parts: None,
              stop_at: Optional[float] = None, stop_step: Optional[int] = None) -> None:
        """Run to ``settings.steps`` (or until wall time ``stop_at`` / step ``stop_step``),
        checkpointing as it goes. A resumed run may change the loss settings: each call is a phase."""
        s = self.settings
        if not self.phases or self.phases[-1]["settings"] != asdict(s):
            self.phases.append({"start": self.step, "settings": asdict(s), "command": self.command})
        if self.best.get("metric", "l1") != s.best_metric or self.best.get("styles", "") != s.styles:
            log.warning("best checkpoint now picked by validation %s on styles %s: forgetting the best by %s "
                        "(step %d)", s.best_metric, s.styles or "all", self.best.get("metric", "l1"), self.best["step"])
            self.best = {"loss": float("inf"), "step": self.step, "metric": s.best_metric, "styles": s.styles}
        if s.per_style_best and not self.best_rows:
            start = {"step": self.step, **self.validate_styles()}  # the starting rows count too
            log.info("per-style validation at the start: %s", start)
            self.history.append(start)
        self.student.train()
        while self.step < s.steps:
            if stop_at is not None and time.time() >= stop_at:
                log.warning("stopping at step %d: time is up", self.step)
                break
            if stop_step is not None and self.step >= stop_step:
                log.warning("stopping at step %d (--stop-step)", self.step)
                break
            for group in self.opt.param_groups:
                group["lr"] = self.lr_at(self.step)
            x = torch.from_numpy(sample_crops(self.photos, s.batch, s.crop, self.rng))
            w = torch.from_numpy(sample_styles(s.batch, self.student.config.num_styles, s.blend_fraction, self.rng,
                                               self.style_ids))
            parts = self.losses(x, w)
            self.opt.zero_grad(set_to_none=True)
            parts["total"].backward()
            self.opt.step()
            self.step += 1
            row = {k: float(v.detach()) for k, v in parts.items()}
            row["step"] = self.step
            if self.step % s.validate_every == 0 or self.step == s.steps:
                row.update(self.validate())
                value = row["val_gram"] if s.best_metric == "gram" else row["val_l1"]
                if value < self.best["loss"]:
                    self.best = {"loss": value, "step": self.step, "psnr": row["val_psnr"], "metric": s.best_metric,
                                 "styles": s.styles}
                    self.cache.mkdir(parents=True, exist_ok=True)
                    torch.save({"student": self.student.state_dict(), "step": self.step,
                                "config": self.student.config.to_dict(), "val": row}, self.cache / "best.pt")
                if s.per_style_best:
                    row.update(self.validate_styles())
                    torch.save({"student": self.with_best_rows(), "step": self.step,
                                "config": self.student.config.to_dict(),
                                "val": {f"step_{sid}": b["step"] for sid, b in self.best_rows.items()}},
                               self.cache / "best_rows.pt")
            self.history.append(row)
            progress(self.step, row)
            if self.step % s.checkpoint_every == 0 or self.step == s.steps:
                self.save()
        self.save()


def student_state(path: Path) -> tuple[StyleNetConfig, dict[str, np.ndarray], dict]:
    """Config, numpy state dict and info of a checkpoint (best.pt or last.pt)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    config = StyleNetConfig.from_dict(state["config"])
    weights = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in state["student"].items()}
    return config, weights, {k: state[k] for k in ("step", "val") if k in state}
