"""Inference backends behind one interface (base.py), in one table (registry.py)."""
from .base import Backend, BackendOptions
from .registry import (AUTO_ORDER, BACKENDS, COMPILED_CPU, auto_choice, available_backends, create_backend,
                       known_backends)

__all__ = ["AUTO_ORDER", "BACKENDS", "COMPILED_CPU", "Backend", "BackendOptions", "auto_choice",
           "available_backends", "create_backend", "known_backends"]
