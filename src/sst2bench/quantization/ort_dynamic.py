"""Method ``ort-dynamic``: ONNX Runtime dynamic int8 through optimum: int8 weights, activation
ranges computed per call (so no calibration)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Method, QuantizeJob, register_method
from .ort import OrtConfig, quantize_ort


@dataclass(frozen=True)
class OrtDynamicConfig(OrtConfig):
    def checks(self):
        return super().checks() + [
            (self.activation_type == "uint8", "ONNX Runtime dynamic quantization takes uint8 activations (activation_type='uint8')"),
            (
                not self.fuse_attention or "Attention" in self.operators,
                "with fuse_attention the Q, K and V MatMuls are inside Attention: add 'Attention' to operators or they stay fp32",
            ),
        ]


@register_method
class OrtDynamic(Method):
    name = "ort-dynamic"
    config_class = OrtDynamicConfig
    is_static = False

    def quantize(self, job: QuantizeJob) -> None:
        quantize_ort(job)
