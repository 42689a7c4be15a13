"""Method ``ort-static``: ONNX Runtime static int8 (QDQ or QOperator) through optimum, calibrated
with ORT's minmax, entropy or percentile calibrators; optionally with an automatic mixed-precision
search (``fallback_search``, see search.py) that keeps the most sensitive nodes in fp32."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .artifacts import op_table
from .base import FORMATS, INT8_TYPES, NO_STATIC_ATTENTION, Method, QuantizeJob, register_method
from .ort import OrtConfig, quantize_ort
from .search import search_fallbacks

SEARCH_FIELDS = ("accuracy_target", "agreement_target", "size_budget", "search_rank_examples", "max_fallbacks")


@dataclass(frozen=True)
class OrtStaticConfig(OrtConfig):
    quant_format: str = "QOperator"
    # Automatic mixed precision, scored on the tuning split: fall the most sensitive int8 nodes
    # back to fp32 until the tuning split keeps accuracy_target of fp32's correct count.
    fallback_search: bool = False
    accuracy_target: float = 0.99
    # ... and agree with fp32's label on this share of the tuning split (0: no agreement target).
    agreement_target: float = 0.0
    # The largest file the search may make, as a fraction of the fp32 graph's file.
    size_budget: float = 0.35
    # Ranking scores each node (int8 alone in the fp32 graph) on this many tuning sentences; steps use all of them.
    search_rank_examples: int = 100
    max_fallbacks: int = 8

    def checks(self):
        defaults = {f.name: f.default for f in fields(self)}
        unread = [name for name in SEARCH_FIELDS if not self.fallback_search and getattr(self, name) != defaults[name]]
        return super().checks() + [
            (self.quant_format in FORMATS, f"quant_format must be one of {FORMATS}"),
            (not self.fuse_attention, NO_STATIC_ATTENTION),
            (self.activation_type in INT8_TYPES, f"activation_type must be one of {INT8_TYPES}"),
            (not unread, f"{', '.join(unread)} only act with fallback_search=True"),
            (
                not self.fallback_search or self.quant_format == "QDQ",
                "fallback_search needs quant_format='QDQ' (a node falls back by dropping its Q/DQ pairs)",
            ),
            (0 < self.accuracy_target <= 1, "accuracy_target must be in (0, 1]"),
            (0 <= self.agreement_target <= 1, "agreement_target must be in [0, 1]"),
            (0 < self.size_budget <= 1, "size_budget must be in (0, 1]"),
            (self.search_rank_examples >= 1 and self.max_fallbacks >= 1, "search_rank_examples and max_fallbacks must be at least 1"),
        ]


@register_method
class OrtStatic(Method):
    name = "ort-static"
    config_class = OrtStaticConfig
    is_static = True

    @classmethod
    def uses_tuning(cls, config: OrtStaticConfig) -> bool:
        return config.fallback_search

    def quantize(self, job: QuantizeJob) -> dict | None:
        if not job.recipe.config.fallback_search:
            quantize_ort(job)
            return None
        all_int8 = job.work_dir / "all-int8"
        all_int8.mkdir()
        quantize_ort(job, all_int8)
        table = op_table(job.source, all_int8 / "model.onnx", set(job.recipe.config.operators))
        return search_fallbacks(job, all_int8 / "model.onnx", [row for row in table if row["precision"] == "int8"])
