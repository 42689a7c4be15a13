"""Where a system's forward pass spends its time, by kind of op, from the runtime's own profiler.

Each backend that runs locally answers ``op_times(texts)``: milliseconds per call by (op, node)
as its runtime reports them (ONNX Runtime's profiler, OpenVINO's performance counters,
torch.profiler's self times). ``categorize`` sorts those into the kinds a reader asks about:
int8 GEMMs, fp32 GEMMs, attention (scores, softmax, mask, fused attention), normalisation and
activation, quantize/dequantize, and the rest. The shares are computed per run, so the report's
"what stands in the way" sentence is measured, not written.
"""

from __future__ import annotations

import re
from collections import defaultdict

CATEGORIES = ("int8 GEMM", "fp32 GEMM", "attention", "normalisation & activation", "quantize & dequantize", "other")

# Weight GEMMs of the exported transformer: projections, feed-forward, pooler and classifier.
PROJECTION = re.compile(r"(q_lin|k_lin|v_lin|out_lin|query|key|value|dense|lin1|lin2|pre_classifier|classifier)", re.IGNORECASE)
INT8_GEMMS = {"MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QLinearMatMul", "QGemm"}
FP32_GEMMS = {"MatMul", "FusedMatMul", "Gemm", "FusedGemm", "FullyConnected"}
ATTENTION = {"Attention", "QAttention", "MultiHeadAttention", "Softmax", "Where", "ScaledDotProductAttention"}
NORMALISATION = {
    "LayerNormalization",
    "SkipLayerNormalization",
    "EmbedLayerNormalization",
    "QEmbedLayerNormalization",
    "SimplifiedLayerNormalization",
    "SkipSimplifiedLayerNormalization",
    "BiasGelu",
    "Gelu",
    "FastGelu",
    "Erf",
    "MVN",
    "Tanh",
    "Relu",
}
QUANTIZE = {"DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear", "FakeQuantize"}


def onnx_category(op_type: str, node: str) -> str:
    """The kind of an ONNX Runtime (or OpenVINO) op: GEMMs between two activations inside an attention
    block (scores, weighted values) count as attention, weight GEMMs by their precision."""
    in_attention = "attention" in node.lower() and not PROJECTION.search(node)
    if op_type in INT8_GEMMS or op_type in FP32_GEMMS:
        if in_attention:
            return "attention"
        return "int8 GEMM" if op_type in INT8_GEMMS else "fp32 GEMM"
    if op_type in ATTENTION:
        return "attention"
    if op_type in NORMALISATION:
        return "normalisation & activation"
    if op_type in QUANTIZE or (op_type in ("Cast", "Mul") and "quant" in node.lower()):
        return "quantize & dequantize"
    return "attention" if in_attention else "other"


def openvino_category(op_type: str, node: str) -> str:
    """The kind of an OpenVINO performance counter (``node`` ends with its kernel, ``[exec_type]``): a
    FullyConnected or MatMul is int8 when its kernel runs I8/U8 (``jit_gemm_I8``, ``brgemm_..._I8``)."""
    kernel = node.rsplit("[", 1)[-1].lower()
    if op_type in ("FullyConnected", "MatMul", "Gemm"):
        int8 = re.search(r"(^|_)(i8|u8)", kernel) is not None
        return onnx_category("MatMulInteger" if int8 else "MatMul", node)
    return onnx_category(op_type, node)


def torch_category(op: str, node: str = "") -> str:
    """The kind of a torch.profiler op (self time, so nested ops are not counted twice)."""
    name = op.lower()
    if "quantized::linear" in name or "fbgemm" in name or "onednn" in name:
        return "int8 GEMM"
    if any(k in name for k in ("quantize_per", "dequantize", "fake_quant")):
        return "quantize & dequantize"
    if any(k in name for k in ("softmax", "masked_fill", "bmm", "baddbmm", "scaled_dot_product")):
        return "attention"
    if any(k in name for k in ("addmm", "aten::mm", "aten::linear", "aten::matmul")):
        return "fp32 GEMM"
    if any(k in name for k in ("layer_norm", "gelu", "tanh", "relu")):
        return "normalisation & activation"
    return "other"


def categorize(op_times: dict[tuple[str, str], float], category) -> dict[str, float]:
    """ms per call by category, every category present (0 when none of its ops ran)."""
    out = dict.fromkeys(CATEGORIES, 0.0)
    for (op, node), ms in op_times.items():
        out[category(op, node)] += ms
    return out


def top_ops(op_times: dict[tuple[str, str], float], n: int = 6) -> dict[str, float]:
    """The ``n`` op types with the most time per call (summed over their nodes)."""
    by_op: dict[str, float] = defaultdict(float)
    for (op, _), ms in op_times.items():
        by_op[op] += ms
    return dict(sorted(by_op.items(), key=lambda item: -item[1])[:n])


def profile_system(system, texts: list[str]) -> dict:
    """``OpProfile`` fields of a loaded system: its backend's ``op_times`` (an untimed pass over
    ``texts``, every shape, then one profiled pass, one text per call) sorted by its ``op_category``."""
    times, source = system.op_times(texts)
    by_category = categorize(times, type(system).op_category)
    return {
        "calls": len(texts),
        "source": source,
        "ms_per_call": {k: round(v, 4) for k, v in by_category.items()},
        "top_ops": {k: round(v, 4) for k, v in top_ops(times).items()},
    }
