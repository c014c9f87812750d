"""The style pack: network weights + a manifest naming each row of the CIN tables, and style specs.

A spec is an id (``7``), a name (``"starry swirl"`` or its slug ``starry-swirl``), or a blend
(``3:0.5,12:0.5``, names allowed). It becomes a weight vector over the table rows, which every
backend takes as an input, so switching or blending never rebuilds a model.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError, StyleError
from .mix import StyleMix, slugify
from ..model.config import StyleNetConfig
from ..paths import MODELS_DIR

USER_LICENCE = "yours (made from your picture)"  # the licence of a style made from the user's picture

STOCK_MANIFEST = MODELS_DIR / "stock26.json"
SLIM_MANIFEST = MODELS_DIR / "slim26.json"  # the stock network's slim student (docs/slim.md)
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class StyleInfo:
    id: int
    name: str
    source: str
    licence: str

    @property
    def slug(self) -> str:
        return slugify(self.name)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_pack(manifest_path: Path, config: StyleNetConfig, state: dict[str, np.ndarray],
              styles: list[StyleInfo], family: str = "stock", extra: dict | None = None) -> None:
    """Write ``<name>.safetensors`` beside ``<name>.json`` (the manifest records its hash)."""
    from safetensors.numpy import save_file

    weights_path = manifest_path.with_suffix(".safetensors")
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sorted(state.items())},
              str(weights_path))
    manifest = {
        "format": MANIFEST_FORMAT,
        "family": family,
        "weights": weights_path.name,
        "sha256": file_sha256(weights_path),
        "config": config.to_dict(),
        "styles": [asdict(s) for s in styles],
        **(extra or {}),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


class StyleSpecs:
    """Spec parsing over ``self.styles`` (ids are positions): shared by a pack and the catalog."""

    styles: list[StyleInfo]

    @property
    def num_styles(self) -> int:
        return len(self.styles)

    def lookup(self, key: "int | str") -> int:
        """Row index of an id or a (case/spacing-insensitive) name."""
        if isinstance(key, str) and re.fullmatch(r"\s*\d+\s*", key):
            key = int(key)
        if isinstance(key, (int, np.integer)):
            if 0 <= key < self.num_styles:
                return int(key)
            raise StyleError(f"style id {key} out of range: use 0 to {self.num_styles - 1} (see `stylecam styles`)")
        slug = slugify(key)
        for s in self.styles:
            if s.slug == slug:
                return s.id
        raise StyleError(f"unknown style {key!r}: use an id 0-{self.num_styles - 1} or a name from `stylecam styles`")

    def weights(self, spec: "str | int | StyleMix | np.ndarray") -> np.ndarray:
        """Normalised float32 weight vector [N] for a spec (parsed by StyleMix, the one parser) or a vector."""
        if isinstance(spec, np.ndarray):
            if spec.shape != (self.num_styles,):
                raise StyleError(f"a style vector needs {self.num_styles} values, got shape {spec.shape}")
            w = spec.astype(np.float32)
            if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
                raise StyleError("style weights must be non-negative and not all zero")
            return w / w.sum()
        if isinstance(spec, dict):  # {style: share}
            return StyleMix(tuple(spec.items())).weights(self)
        return StyleMix.parse(spec).weights(self)

    def describe(self, spec) -> str:
        """Human label for a spec: 'Starry Swirl' or 'Stained Glass 50% + Lilac Pastel 50%'."""
        return StyleMix.of(self.weights(spec), self).label(self)


class StylePack(StyleSpecs):
    """One network's weights and config, and the styles it carries.

    A style is a vector over the network's CIN table rows (``config.num_styles`` of them): for the
    stock family row i is style i (``vectors`` is None); for the picture family each style is its
    code ``[code, 1]`` (``vectors`` [styles, 101]). ``weights(spec)`` is a spec's mix over the
    styles, ``vector(spec)`` what the network takes; the two are the same for the stock family.
    """

    def __init__(self, config: StyleNetConfig, state: dict[str, np.ndarray], styles: list[StyleInfo],
                 digest: str, family: str = "stock", vectors: np.ndarray | None = None,
                 manifest: dict | None = None):
        self.config = config
        self.state = state
        self.styles = styles
        self.digest = digest  # identifies the weights (cache keys for exported models)
        self.family = family
        self.vectors = vectors
        self.manifest = manifest or {}

    @property
    def network(self) -> str:
        """The network's name: its family, or its own ("slim") for a lighter stand-in of a family."""
        return self.manifest.get("network", self.family)

    @classmethod
    def load(cls, manifest_path: Path = STOCK_MANIFEST) -> "StylePack":
        from safetensors.numpy import load_file

        try:
            manifest = json.loads(Path(manifest_path).read_text())
            weights_path = Path(manifest_path).parent / manifest["weights"]
            config = StyleNetConfig.from_dict(manifest["config"])
            styles = [StyleInfo(**s) for s in manifest["styles"]]
        except FileNotFoundError:
            raise ModelError(f"style pack not found: {manifest_path}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"corrupt style manifest {manifest_path}: {exc}") from None
        try:
            digest = file_sha256(weights_path)
        except OSError:
            raise ModelError(f"model weights not found: {weights_path}") from None
        if digest != manifest.get("sha256"):
            raise ModelError(f"corrupt model weights {weights_path}: checksum does not match its manifest")
        try:
            state = load_file(str(weights_path))
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise ModelError(f"corrupt model weights {weights_path}: {exc}") from None
        family = manifest.get("family", "stock")
        if family == "stock" and len(styles) != config.num_styles:
            raise ModelError(f"{manifest_path} names {len(styles)} styles but the model has {config.num_styles}")
        return cls(config, state, styles, digest, family, manifest=manifest)

    def build(self):
        """A StyleNet (torch, eval mode) holding these weights."""
        import torch
        from ..model.stylenet import StyleNet

        net = StyleNet(self.config)
        try:
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.state.items()})
        except RuntimeError as exc:
            raise ModelError(f"weights do not fit the model config: {str(exc).splitlines()[0]}") from None
        return net.eval().requires_grad_(False)

    def vector(self, spec) -> np.ndarray:
        """The network's style input [rows] for a spec: a mix of the styles' vectors."""
        w = self.weights(spec)
        return w if self.vectors is None else (w @ self.vectors).astype(np.float32)

    def calibration_vectors(self) -> list[np.ndarray]:
        """Style inputs that span what the network sees (int8 calibration and its guard)."""
        if self.family == "stock":
            return list(np.eye(self.config.num_styles, dtype=np.float32))
        from ..model.config import code_vector

        return [code_vector(np.asarray(r["code"])) for r in self.manifest.get("reference_styles", [])]
