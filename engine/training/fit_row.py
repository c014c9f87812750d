"""Fit one new row of the CIN tables to a picture: a new style that every stock style is untouched by.

fast: the arbitrary-style teacher stylizes content crops; the row is fitted to reproduce them
      (L1 on pixels: layout and palette) while Gram statistics of VGG features are pulled towards
      the teacher's outputs and towards the picture itself (the strokes the teacher's 384² outputs
      and the pixel loss alone wash out).
full: classic perceptual training against the picture itself (content + Gram style + total
      variation), with resumable checkpoints.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..video.capture import IMAGE_EXTS, read_image
from ..frame.frames import fit_long
from ..errors import InputError
from ..paths import data_dir
from ..styles.packs import StylePack

log = logging.getLogger(__name__)
PACKAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle")


@dataclass(frozen=True)
class FitSettings:
    mode: str = "fast"  # fast | full
    steps: int = 250  # fast mode; ~160 s on 2 cores
    lr: float = 0.02
    batch: int = 2
    crop: int = 384  # the teacher's size in fast mode
    crops: int = 24  # distinct content crops (teacher targets are computed once each)
    gram_weight: float = 0.03  # fast mode: Gram loss on VGG features against the teacher (strokes)
    picture_weight: float = 0.02  # fast mode: Gram loss against the picture itself (as full mode uses)
    content_dir: Optional[Path] = None
    device: str = "cpu"
    seed: int = 0
    checkpoint_every: int = 100  # full mode
    content_weight: float = 1e-5  # full mode loss: content (relu3_3 MSE) + style (Gram MSE) + total variation
    style_weight: float = 5.0
    tv_weight: float = 0.1


def content_photos(content_dir: Optional[Path] = None, names: tuple[str, ...] = PACKAGE_PHOTOS) -> list[np.ndarray]:
    """scikit-image's photos ``names``, plus every picture in the user's folder (``--content DIR``)."""
    from skimage import data

    photos = []
    for name in names:
        img = getattr(data, name)()
        photos.append(img[0] if isinstance(img, tuple) else img)
    if content_dir:
        folder = Path(content_dir)
        if not folder.is_dir():
            raise InputError(f"--content {folder} is not a folder")
        photos += [read_image(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS]
    return photos


def random_crops(photos: list[np.ndarray], n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Square crops at random scales (so strokes are learnt at several zooms)."""
    crops = []
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 1.0))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crops.append(cv2.resize(img[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA))
    return crops


def _to_tensor(images, device) -> torch.Tensor:
    arr = np.stack([np.asarray(i, np.float32) for i in images]).transpose(0, 3, 1, 2)
    return torch.from_numpy(arr / (255.0 if arr.max() > 1.5 else 1.0)).to(device)


def attach_row(net, init_index: int) -> list[torch.nn.Parameter]:
    """Give every CIN a trainable row initialised from stock row ``init_index``."""
    params = []
    for norm in net.norms():
        g = torch.nn.Parameter(norm.gamma.detach()[init_index].clone())
        b = torch.nn.Parameter(norm.beta.detach()[init_index].clone())
        norm.row = (g, b)
        params += [g, b]
    return params


def rows_from(net) -> dict[str, np.ndarray]:
    named = {id(m): n for n, m in net.named_modules()}
    out = {}
    for norm in net.norms():
        out[f"{named[id(norm)]}.gamma"] = norm.row[0].detach().cpu().numpy()
        out[f"{named[id(norm)]}.beta"] = norm.row[1].detach().cpu().numpy()
    return out


def closest_stock_row(net, x: torch.Tensor, target: torch.Tensor, num_styles: int) -> int:
    """The stock style whose output is nearest the teacher's (a good starting point)."""
    small_x = F.interpolate(x, scale_factor=0.5, mode="area")
    small_t = F.interpolate(target, scale_factor=0.5, mode="area")
    with torch.no_grad():
        errors = [(net(small_x, torch.eye(num_styles, device=x.device)[i]) - small_t).abs().mean().item()
                  for i in range(num_styles)]
    return int(np.argmin(errors))


def fit_fast(pack: StylePack, picture: np.ndarray, settings: FitSettings,
             progress: Callable[[int, int, float], None] = lambda i, n, loss: None) -> tuple[dict, dict]:
    """Rows fitted to the teacher's outputs; returns (rows, info)."""
    from .teacher import ArbitraryTeacher

    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    device = torch.device(settings.device)
    teacher = ArbitraryTeacher()
    code = teacher.style_code(picture)
    crops = random_crops(content_photos(settings.content_dir), settings.crops, settings.crop, rng)
    targets = [teacher.stylize(c, code) for c in crops]
    x_all, t_all = _to_tensor(crops, device), _to_tensor(targets, device)
    net = pack.build().to(device)
    init = closest_stock_row(net, x_all[:2], t_all[:2], pack.num_styles)
    params = attach_row(net, init)
    vgg = picture_grams = None
    if settings.gram_weight > 0 or settings.picture_weight > 0:
        from .vgg import Vgg16Features, gram

        vgg = Vgg16Features().to(device)
        # The picture at the same scale ratio to the (half-size) crops as `stylecam eval` uses (256 : 384).
        small = _to_tensor([fit_long(picture, settings.crop // 3)], device)
        with torch.no_grad():
            picture_grams = {k: gram(v) for k, v in vgg(small).items()}
    opt = torch.optim.Adam(params, lr=settings.lr)
    loss_value = float("nan")
    for step in range(settings.steps):
        idx = torch.from_numpy(rng.choice(len(crops), settings.batch, replace=False))
        x, t = x_all[idx], t_all[idx]
        if rng.random() < 0.5:
            x, t = x.flip(3), t.flip(3)
        out = net(x, None)
        loss = (out - t).abs().mean()
        if vgg is not None:  # strokes: Gram statistics at half size (4× cheaper through VGG)
            fo = vgg(F.interpolate(out, scale_factor=0.5, mode="area"))
            with torch.no_grad():
                ft = vgg(F.interpolate(t, scale_factor=0.5, mode="area"))
            loss = loss + settings.gram_weight * sum(F.mse_loss(gram(fo[k]), gram(ft[k])) for k in fo)
            if settings.picture_weight > 0:
                loss = loss + settings.picture_weight * sum(
                    F.mse_loss(gram(fo[k]), picture_grams[k].expand(x.shape[0], -1, -1)) for k in fo)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_value = loss.item()
        progress(step + 1, settings.steps, loss_value)
    info = {"mode": "fast", "init_style": init, "steps": settings.steps, "final_loss": loss_value,
            "seconds": time.perf_counter() - t0}
    return rows_from(net), info


def fit_full(pack: StylePack, picture: np.ndarray, settings: FitSettings, slug: str,
             progress: Callable[[int, int, float], None] = lambda i, n, loss: None) -> tuple[dict, dict]:
    """Perceptual-loss training of the row against the picture itself; resumes from its checkpoint."""
    from .vgg import CONTENT_LAYER, STYLE_LAYERS, Vgg16Features, gram

    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    device = torch.device(settings.device)
    vgg = Vgg16Features().to(device)
    size = min(settings.crop, 256)
    style = cv2.resize(picture, (size * picture.shape[1] // min(picture.shape[:2]),
                                 size * picture.shape[0] // min(picture.shape[:2])), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        style_grams = {k: gram(v) for k, v in vgg(_to_tensor([style], device)).items()}
    photos = content_photos(settings.content_dir)
    net = pack.build().to(device)
    params = attach_row(net, 0)
    opt = torch.optim.Adam(params, lr=settings.lr * 0.5)
    ckpt = data_dir() / "styles" / ".training" / f"{slug}.pt"
    start = 0
    if ckpt.is_file():
        state = torch.load(ckpt, map_location=device)
        for p, v in zip(params, state["params"]):
            p.data.copy_(v)
        opt.load_state_dict(state["opt"])
        start = state["step"]
        log.warning("resuming %s from step %d", slug, start)
    loss_value = float("nan")
    for step in range(start, settings.steps):
        x = _to_tensor(random_crops(photos, settings.batch, size, rng), device)
        out = net(x, None)
        layers = (*STYLE_LAYERS,)
        fo = vgg(out, layers)
        with torch.no_grad():
            fc = vgg(x, (CONTENT_LAYER,))
        content = F.mse_loss(fo[CONTENT_LAYER], fc[CONTENT_LAYER])
        style_loss = sum(F.mse_loss(gram(fo[k]), style_grams[k].expand(x.shape[0], -1, -1)) for k in STYLE_LAYERS)
        tv = (out[..., 1:, :] - out[..., :-1, :]).abs().mean() + (out[..., 1:] - out[..., :-1]).abs().mean()
        loss = settings.content_weight * content + settings.style_weight * style_loss + settings.tv_weight * tv
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_value = loss.item()
        progress(step + 1, settings.steps, loss_value)
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == settings.steps:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict(), "step": step + 1}, ckpt)
    info = {"mode": "full", "steps": settings.steps, "resumed_from": start, "final_loss": loss_value,
            "seconds": time.perf_counter() - t0}
    ckpt.unlink(missing_ok=True)
    return rows_from(net), info
