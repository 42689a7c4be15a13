"""Method ``ort-static``: ONNX Runtime static int8 (QDQ or QOperator) through optimum, calibrated
with ORT's minmax, entropy or percentile calibrators."""

from __future__ import annotations

from dataclasses import dataclass

from .base import FORMATS, INT8_TYPES, Method, MethodConfig, QuantizeJob, register_method


@dataclass(frozen=True)
class OrtStaticConfig(MethodConfig):
    quant_format: str = "QOperator"
    activation_type: str = "uint8"
    weight_type: str = "int8"
    per_channel: bool = True
    reduce_range: bool = False
    # optimum's exclusions: LayerNorm, GELU, residual Add, embedding Add, the Add before Softmax.
    optimum_exclusions: bool = True

    def checks(self):
        return super().checks() + [
            (self.quant_format in FORMATS, f"quant_format must be one of {FORMATS}"),
            (
                self.activation_type in INT8_TYPES and self.weight_type in INT8_TYPES,
                f"activation_type and weight_type must be one of {INT8_TYPES}",
            ),
        ]


@register_method
class OrtStatic(Method):
    name = "ort-static"
    config_class = OrtStaticConfig
    is_static = True

    def quantize(self, job: QuantizeJob) -> None:
        from .ort import quantize_ort

        quantize_ort(job)
