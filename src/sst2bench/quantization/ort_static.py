"""Method ``ort-static``: ONNX Runtime static int8 (QDQ or QOperator) through optimum, calibrated
with ORT's minmax, entropy or percentile calibrators."""

from __future__ import annotations

from dataclasses import dataclass

from .base import FORMATS, INT8_TYPES, Method, QuantizeJob, register_method
from .ort import OrtConfig, quantize_ort


@dataclass(frozen=True)
class OrtStaticConfig(OrtConfig):
    quant_format: str = "QOperator"

    def checks(self):
        return super().checks() + [
            (self.quant_format in FORMATS, f"quant_format must be one of {FORMATS}"),
            (self.activation_type in INT8_TYPES, f"activation_type must be one of {INT8_TYPES}"),
        ]


@register_method
class OrtStatic(Method):
    name = "ort-static"
    config_class = OrtStaticConfig
    is_static = True

    def quantize(self, job: QuantizeJob) -> None:
        quantize_ort(job)
