"""OpenVINO fp32 and NNCF int8 (systems/openvino.py, quantization/nncf_openvino.py) on the tiny signal model."""

from __future__ import annotations

from pathlib import Path

import datasets
import onnx
import pytest

from sst2bench.errors import UserError
from sst2bench.latency import read_thread_settings
from sst2bench.quantization import nncf_openvino
from sst2bench.quantization.base import CalibrationConfig, QuantizeJob
from sst2bench.quantization.calibration import CalibrationData, calibration_data
from sst2bench.quantization.recipes import Recipe
from sst2bench.quantization.run import truncated_as_inference
from sst2bench.systems import InferenceConfig, OrtSystem, SystemSpec, load_system
from sst2bench.systems.openvino import OpenVinoSystem

from .conftest import accuracy, quantize_job

VNNI = {"avx2": True, "avx512f": True, "avx512_vnni": True}
AVX2_ONLY = {"avx2": True, "avx512f": False, "avx512_vnni": False, "avx_vnni": False, "amx_int8": False}


def make_job(signal_model, out_dir: Path, calibration=None, **fields) -> QuantizeJob:
    """NNCF on the signal model's ONNX export, calibrated on its training sentences unless ``calibration`` is given."""
    from transformers import AutoTokenizer

    recipe = truncated_as_inference(Recipe.build("nncf-test", "nncf-openvino", calibration_samples=100, **fields), InferenceConfig())
    if calibration is None:
        calibration = calibration_data(recipe.calibration, AutoTokenizer.from_pretrained(signal_model.onnx_dir), signal_model.train)
    return QuantizeJob(
        recipe=recipe, source=signal_model.onnx_dir / "model.onnx", out_dir=out_dir, work_dir=out_dir.parent, calibration=calibration
    )


@pytest.fixture(scope="module")
def nncf_default(signal_model, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("nncf") / "default"
    tuning, table = quantize_job(make_job(signal_model, out_dir))
    return out_dir, tuning, table


def test_openvino_fp32_gives_onnxruntime_labels_in_true_fp32(signal_model):
    openvino = OpenVinoSystem(signal_model.onnx_dir, InferenceConfig(batch_size=64))
    onnxruntime = OrtSystem(signal_model.onnx_dir, InferenceConfig(batch_size=64))
    texts = list(signal_model.held_out["sentence"])
    assert [p.label for p in openvino.predict(texts)] == [p.label for p in onnxruntime.predict(texts)]
    assert openvino.runtime_properties()["INFERENCE_PRECISION_HINT"] == "f32"
    assert openvino.runtime_properties()["INFERENCE_NUM_THREADS"] == "1"
    spec = SystemSpec("fp32-openvino", "openvino", str(signal_model.onnx_dir), "fp32")
    two_threads = spec.load(InferenceConfig(threads=2))
    assert two_threads.runtime_properties()["INFERENCE_NUM_THREADS"] == "2"
    assert read_thread_settings(two_threads)["runtime_INFERENCE_NUM_THREADS"] == "2"  # what the latency worker records


def test_nncf_int8_keeps_accuracy_and_runs_int8_matmuls(signal_model, nncf_default):
    out_dir, tuning, table = nncf_default
    system = load_system(str(out_dir))  # an IR folder is claimed by the OpenVINO backend
    assert isinstance(system, OpenVinoSystem)
    assert accuracy(system, signal_model.held_out) >= signal_model.fp32_accuracy - 0.02
    precisions = {row["node"]: row["precision"] for row in table}
    assert precisions["/distilbert/transformer/layer.0/ffn/lin1/MatMul"] == "int8"
    # softmax(QK)·V has no quantizer on either input: NNCF keeps it fp32.
    assert precisions["/distilbert/transformer/layer.0/attention/MatMul_1"] == "fp32"
    assert tuning["calibration_sentences"] == 100
    # Named as in the ONNX graph (the head's Gemms included), so multiply-adds can be split by precision.
    onnx_nodes = {node.name: node.op_type for node in onnx.load(str(signal_model.onnx_dir / "model.onnx")).graph.node}
    assert {row["node"]: row["op_type"] for row in table}.items() <= onnx_nodes.items()
    assert len(table) == sum(op in ("MatMul", "Gemm") for op in onnx_nodes.values())


def test_nncf_with_a_broken_calibration_loses_accuracy(signal_model, tmp_path):
    """Calibrated on one word, the activation ranges are wrong for real sentences: the accuracy bar must catch it."""
    from transformers import AutoTokenizer

    encoded = AutoTokenizer.from_pretrained(signal_model.onnx_dir)(["the"] * 100)
    broken = CalibrationData(
        datasets.Dataset.from_dict({k: encoded[k] for k in ("input_ids", "attention_mask")}), CalibrationConfig(samples=100)
    )
    quantize_job(make_job(signal_model, tmp_path / "broken", calibration=broken))
    assert (
        accuracy(OpenVinoSystem(tmp_path / "broken", InferenceConfig(batch_size=64)), signal_model.held_out)
        < signal_model.fp32_accuracy - 0.02
    )


def test_overflow_fix_follows_the_cpu_isa(signal_model, tmp_path, monkeypatch):
    assert nncf_openvino.overflow_fix_for(VNNI) == "disable"
    assert nncf_openvino.overflow_fix_for({"avx2": True, "avx_vnni": True}) == "disable"
    assert nncf_openvino.overflow_fix_for(AVX2_ONLY) == "first_layer"
    monkeypatch.setattr(nncf_openvino, "cpu_info", lambda: {"isa": AVX2_ONLY})
    tuning, _ = quantize_job(make_job(signal_model, tmp_path / "avx2"))
    assert tuning["overflow_fix"] == "first_layer"
    monkeypatch.setattr(nncf_openvino, "cpu_info", lambda: {"isa": VNNI})
    assert quantize_job(make_job(signal_model, tmp_path / "vnni"))[0]["overflow_fix"] == "disable"
    # first_layer halves only the first convolution's weight range: DistilBERT has none, so the weights are the same.
    weights = nncf_openvino.WEIGHTS_FILE
    assert (tmp_path / "avx2" / weights).read_bytes() == (tmp_path / "vnni" / weights).read_bytes()


@pytest.mark.parametrize("field", [{"overflow_fix": "enable"}, {"preset": "performance"}, {"fast_bias_correction": False}])
def test_each_option_changes_the_int8_weights(signal_model, nncf_default, tmp_path, field):
    default_dir = nncf_default[0]
    quantize_job(make_job(signal_model, tmp_path / "variant", **field))
    assert (tmp_path / "variant" / nncf_openvino.WEIGHTS_FILE).read_bytes() != (default_dir / nncf_openvino.WEIGHTS_FILE).read_bytes()


def test_fp32_nodes_stay_fp32(signal_model, tmp_path):
    node = "/distilbert/transformer/layer.1/ffn/lin2/MatMul"
    _, table = quantize_job(make_job(signal_model, tmp_path / "fallback", fp32_nodes=(node,)))
    precisions = {row["node"]: row["precision"] for row in table}
    assert precisions[node] == "fp32" and precisions["/distilbert/transformer/layer.0/ffn/lin2/MatMul"] == "int8"


def test_config_refuses_what_nncf_cannot_do():
    with pytest.raises(UserError, match="optimize_graph"):
        Recipe.build("x", "nncf-openvino", optimize_graph=True)
    with pytest.raises(UserError, match="overflow_fix"):
        Recipe.build("x", "nncf-openvino", overflow_fix="half")
    with pytest.raises(UserError, match="calibration_batch_size is not a field"):
        Recipe.build("x", "nncf-openvino", calibration_batch_size=4)


def test_the_quantize_pipeline_records_and_reloads_an_nncf_model(signal_model, tmp_path):
    from sst2bench.quantization.run import quantize as run_recipe

    recipe = Recipe.build("nncf-openvino", "nncf-openvino", calibration_samples=50)
    record = run_recipe(recipe, signal_model.onnx_dir, tmp_path / "int8", signal_model.train)
    assert record["backend"] == "openvino" and record["source_graph"] == "as exported"
    assert record["size_mib"] > 0 and record["ops"]["MatMul"]["int8"] > 0
    system = SystemSpec("nncf-openvino", record["backend"], str(tmp_path / "int8"), "int8").load(InferenceConfig(batch_size=64))
    assert accuracy(system, signal_model.held_out) >= signal_model.fp32_accuracy - 0.02
