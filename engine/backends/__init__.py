"""Inference backends behind one interface (base.py), in one table (registry.py).

May import: styles (packs, catalog), frame, model and the helpers; never live or sinks.
"""
from .base import Backend, BackendOptions
from .networks import create_backend
from .registry import (AUTO_ORDER, BACKENDS, COMPILED_CPU, auto_choice, available_backends, create_single,
                       known_backends)

__all__ = ["AUTO_ORDER", "BACKENDS", "COMPILED_CPU", "Backend", "BackendOptions", "auto_choice",
           "available_backends", "create_backend", "create_single", "known_backends"]
