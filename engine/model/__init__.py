"""The style network and its building blocks."""
from .cin import ConditionalInstanceNorm, InstanceNorm, instance_norm
from .stylenet import StyleNet, StyleNetConfig

__all__ = ["ConditionalInstanceNorm", "InstanceNorm", "instance_norm", "StyleNet", "StyleNetConfig"]
