"""Where the forward time goes (issue 21): each runtime's profiler, sorted into kinds of op."""

from __future__ import annotations

import pytest

from sst2bench.profile import CATEGORIES, categorize, onnx_category, openvino_category, profile_system, torch_category
from sst2bench.systems import InferenceConfig

TEXTS = ["good film .", "a very dull , boring mess that goes on", "fun !", "awful", "charming and moving"]
LAYER = "/distilbert/transformer/layer.0"


@pytest.mark.parametrize(
    "op, node, kind",
    [
        ("MatMul", f"{LAYER}/attention/q_lin/MatMul", "fp32 GEMM"),
        ("MatMul", f"{LAYER}/attention/MatMul", "attention"),  # scores: two activations
        ("MatMulInteger", f"{LAYER}/attention/MatMul_1_quant", "attention"),
        ("MatMulInteger", f"{LAYER}/ffn/lin1/MatMul_quant", "int8 GEMM"),
        ("DynamicQuantizeMatMul", f"{LAYER}/attention/out_lin/MatMul_quant", "int8 GEMM"),
        ("QAttention", "Attention_0_quant", "attention"),
        ("DynamicQuantizeLinear", f"{LAYER}/ffn/lin1/MatMul_QuantizeLinear", "quantize & dequantize"),
        ("Mul", f"{LAYER}/ffn/lin1/MatMul_quant_scales_mul", "quantize & dequantize"),
        ("SkipLayerNormalization", "SkipLayerNorm_0", "normalisation & activation"),
        ("Transpose", f"{LAYER}/attention/Transpose", "attention"),
        ("Gather", "/distilbert/embeddings/word_embeddings/Gather", "other"),
    ],
)
def test_onnx_ops_sort_into_their_kind(op, node, kind):
    assert onnx_category(op, node) == kind


def test_openvino_gemms_are_int8_by_their_kernel_and_torch_ops_by_name():
    assert openvino_category("FullyConnected", f"{LAYER}/ffn/lin1/MatMul [brgemm_avx512_I8]") == "int8 GEMM"
    assert openvino_category("FullyConnected", f"{LAYER}/ffn/lin1/MatMul [jit_gemm_I8]") == "int8 GEMM"
    assert openvino_category("FullyConnected", f"{LAYER}/ffn/lin1/MatMul [brgemm_avx512_f32]") == "fp32 GEMM"
    assert openvino_category("MVN", "LayerNorm [jit_avx512_f32]") == "normalisation & activation"
    assert torch_category("quantized::linear") == "int8 GEMM" and torch_category("aten::addmm") == "fp32 GEMM"
    assert torch_category("aten::softmax") == "attention" and torch_category("aten::layer_norm") == "normalisation & activation"
    times = {("MatMulInteger", "a/ffn/lin1"): 1.0, ("Softmax", "s"): 0.5, ("Gather", "g"): 0.25}
    assert categorize(times, onnx_category) == {**dict.fromkeys(CATEGORIES, 0.0), "int8 GEMM": 1.0, "attention": 0.5, "other": 0.25}


@pytest.fixture(scope="module")
def int8_dir(signal_model, tmp_path_factory):
    from sst2bench.quantization import preset
    from sst2bench.quantization.run import quantize

    out = tmp_path_factory.mktemp("int8") / "ort-dynamic-pc"
    quantize(preset("ort-dynamic-pc"), signal_model.onnx_dir, out, signal_model.train)
    return out


def test_each_runtime_reports_its_forward_time_by_kind(signal_model, int8_dir):
    from sst2bench.systems import OrtSystem, TorchSystem
    from sst2bench.systems.openvino import OpenVinoSystem

    config = InferenceConfig(threads=1)
    fp32 = profile_system(OrtSystem(signal_model.onnx_dir, config), TEXTS)
    int8 = profile_system(OrtSystem(int8_dir, config), TEXTS)
    openvino = profile_system(OpenVinoSystem(signal_model.onnx_dir, config), TEXTS)
    torch = profile_system(TorchSystem.from_pretrained(str(signal_model.torch_dir), config), TEXTS)
    for profile in (fp32, int8, openvino, torch):
        assert list(profile["ms_per_call"]) == list(CATEGORIES) and profile["calls"] == len(TEXTS)
        assert profile["ms_per_call"]["attention"] > 0 and sum(profile["ms_per_call"].values()) > 0
    assert fp32["ms_per_call"]["fp32 GEMM"] > 0 and fp32["ms_per_call"]["int8 GEMM"] == 0
    assert int8["ms_per_call"]["int8 GEMM"] > 0 and int8["ms_per_call"]["quantize & dequantize"] > 0
    assert openvino["ms_per_call"]["fp32 GEMM"] > 0 and openvino["ms_per_call"]["int8 GEMM"] == 0
    assert torch["ms_per_call"]["fp32 GEMM"] > 0 and "ONNX Runtime" in fp32["source"] and "OpenVINO" in openvino["source"]
