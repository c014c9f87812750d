"""Inference backends behind one interface; see base.py."""
from .base import AUTO_ORDER, Backend, BackendOptions, available_backends, create_backend, known_backends

__all__ = ["AUTO_ORDER", "Backend", "BackendOptions", "available_backends", "create_backend", "known_backends"]
