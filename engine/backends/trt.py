"""TensorRT backend: the seam for the GPU issue. Registered so `auto` and `doctor` see it; it
reports itself unavailable until the TensorRT engine builder lands."""
from __future__ import annotations

from ..errors import BackendUnavailable
from .base import Backend, register


@register("tensorrt")
def _tensorrt(**kw) -> Backend:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise BackendUnavailable("TensorRT is not installed (pip install .[tensorrt] on an NVIDIA machine)") from None
    raise BackendUnavailable("the TensorRT backend is not built yet")
