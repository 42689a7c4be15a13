"""int8 quantization: recipes (a method's typed config + a calibration config), named presets,
and a registry of methods (one module each, imported on first lookup, never from here)."""

from .base import METHODS, CalibrationConfig, Method, MethodConfig, get_method, method_names, register_method
from .presets import PRESETS, preset
from .recipes import Recipe

__all__ = [
    "METHODS",
    "PRESETS",
    "CalibrationConfig",
    "Method",
    "MethodConfig",
    "Recipe",
    "get_method",
    "method_names",
    "preset",
    "register_method",
]
