"""int8 quantization: recipes (typed, validated, named presets) and the tools that apply them."""

from .recipes import PRESETS, Recipe, preset

__all__ = ["PRESETS", "Recipe", "preset"]
