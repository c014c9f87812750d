"""Inference backends behind one interface (base.py), in one table (registry.py).

May import: engine.styles, engine.frame, engine.model, engine.cpu_tuning, engine.defaults, engine.errors,
engine.locking, engine.metrics, engine.paths
"""
from .base import Backend, BackendOptions
from .networks import create_backend
from .registry import (AUTO_ORDER, BACKENDS, COMPILED_CPU, auto_choice, available_backends, create_single,
                       known_backends)

__all__ = ["AUTO_ORDER", "BACKENDS", "COMPILED_CPU", "Backend", "BackendOptions", "auto_choice",
           "available_backends", "create_backend", "create_single", "known_backends"]
