"""Method ``ort-dynamic``: ONNX Runtime dynamic int8 through optimum: int8 weights, activation
ranges computed per call (so no calibration)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import INT8_TYPES, Method, MethodConfig, QuantizeJob, register_method


@dataclass(frozen=True)
class OrtDynamicConfig(MethodConfig):
    activation_type: str = "uint8"
    weight_type: str = "int8"
    per_channel: bool = True
    reduce_range: bool = False
    # optimum's exclusions: LayerNorm, GELU, residual Add, embedding Add, the Add before Softmax.
    optimum_exclusions: bool = True

    def checks(self):
        return super().checks() + [
            (self.weight_type in INT8_TYPES, f"weight_type must be one of {INT8_TYPES}"),
            (self.activation_type == "uint8", "ONNX Runtime dynamic quantization takes uint8 activations (activation_type='uint8')"),
        ]


@register_method
class OrtDynamic(Method):
    name = "ort-dynamic"
    config_class = OrtDynamicConfig
    is_static = False

    def quantize(self, job: QuantizeJob) -> None:
        from .ort import quantize_ort

        quantize_ort(job)
