"""ISA-aware int8 recipes: a recipe's ``isa`` picks the variant that is safe on the CPU it targets.

x86 integer GEMMs multiply uint8 activations by int8 weights. With VNNI (AVX-512 VNNI, AVX-VNNI)
or AMX one instruction accumulates the products in 32 bits. Without it (AVX2, AVX-512 without
VNNI) ONNX Runtime uses VPMADDUBSW, which adds two u8 x s8 products into a saturating int16:
full-range int8 weights can overflow there. ONNX Runtime's advice, which optimum encodes in
``AutoQuantizationConfig.avx2/avx512`` (``reduce_range``) and ``avx512_vnni`` (full range), is
7-bit weights (``reduce_range``) or uint8 weights without VNNI; this module picks 7-bit weights,
which keep the signed-weight kernels that make int8 fast on AVX2 (U8U8 was no faster than fp32
there: DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..provenance import INT8_ISAS, best_int8_isa
from .base import MethodConfig

# "none": the recipe's types as written, whatever the CPU; "auto": the CPU quantizing; or a named target.
ISAS = ("none", "auto", "avx2", "avx512", "avx512_vnni", "amx")
# Targets whose int8 dot product accumulates in 32 bits (no VPMADDUBSW saturation).
NO_SATURATION = {isa.recipe_target for isa in INT8_ISAS if isa.accumulates_in_32_bits}


@dataclass(frozen=True)
class IsaAwareConfig(MethodConfig):
    """The fields of a method whose int8 GEMMs run ONNX Runtime's u8 x s8 kernels: 7-bit weights
    (``reduce_range``) by hand, or ``isa`` to let the target CPU decide them (see ``resolve_isa``)."""

    reduce_range: bool = False
    # The CPU the model is for ("auto": the one quantizing); it decides reduce_range ("none": as written).
    isa: str = "none"

    def checks(self):
        return super().checks() + [
            (self.isa in ISAS, f"isa must be one of {ISAS}"),
            (self.isa == "none" or not self.reduce_range, f"isa {self.isa!r} decides reduce_range: leave reduce_range at its default"),
        ]


@dataclass(frozen=True)
class IsaChoice:
    """What an ``isa`` field resolved to, for the record: the target, the CPU it was read from
    (None for a named target), the fields it set and why, in a sentence."""

    requested: str
    target: str
    cpu: str | None
    changes: dict
    reason: str

    def to_dict(self) -> dict:
        return {"requested": self.requested, "target": self.target, "cpu": self.cpu, "changes": self.changes, "reason": self.reason}


def detect_target(cpu: dict) -> str:
    """The best int8 target the CPU's flags allow (``provenance.cpu_info()`` format); AVX2's below AVX2."""
    best = best_int8_isa(cpu["isa"])
    return best.recipe_target if best else "avx2"


def resolve_isa(config) -> IsaChoice | None:
    """The fields ``config.isa`` changes for its target; None when the recipe says ``"none"``."""
    from ..provenance import cpu_info

    if config.isa == "none":
        return None
    cpu = cpu_info() if config.isa == "auto" else None
    target = detect_target(cpu) if cpu else config.isa
    where = f"{cpu['model']} ({target})" if cpu else f"the named target {target}"
    if getattr(config, "weight_type", "int8") == "uint8":
        return IsaChoice(config.isa, target, cpu and cpu["model"], {}, f"uint8 weights (U8U8) cannot saturate: kept as written for {where}")
    if target in NO_SATURATION:
        return IsaChoice(
            config.isa,
            target,
            cpu and cpu["model"],
            {"reduce_range": False},
            f"{where} accumulates u8 x s8 products in 32 bits (VNNI/AMX), so full-range 8-bit weights are safe",
        )
    return IsaChoice(
        config.isa,
        target,
        cpu and cpu["model"],
        {"reduce_range": True},
        f"{where} has no VNNI: u8 x s8 products go through VPMADDUBSW's saturating int16, so weights are 7-bit (reduce_range)",
    )


def recipe_isa(recipe) -> IsaChoice | None:
    """``resolve_isa`` for a recipe whose method config has an ``isa`` field, else None."""
    return resolve_isa(recipe.config) if hasattr(recipe.config, "isa") else None


def for_target(recipe, choice: IsaChoice | None):
    """The recipe the quantizer runs: ``choice``'s fields set, ``isa`` now ``"none"`` (concrete)."""
    return recipe.replace(isa="none", **choice.changes) if choice else recipe
