"""INC's PyTorch static int8 (quantization/inc_torch.py) and its system (systems/torch_int8.py) on the tiny signal model."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest

from sst2bench.errors import UserError
from sst2bench.paths import size_mib
from sst2bench.quantization.base import QuantizeJob, get_method
from sst2bench.quantization.calibration import calibration_data
from sst2bench.quantization.recipes import Recipe
from sst2bench.quantization.run import truncated_as_inference
from sst2bench.systems import InferenceConfig, load_system
from sst2bench.systems.torch_int8 import TorchInt8System, load_int8_model

from .conftest import accuracy, quantize_job


def make_job(signal_model, out_dir: Path, **fields) -> QuantizeJob:
    from transformers import AutoTokenizer

    recipe = truncated_as_inference(
        Recipe.build("inc-torch-test", "inc-torch", **{"calibration_samples": 50, "max_trials": 3, **fields}), InferenceConfig()
    )
    calibration = calibration_data(recipe.calibration, AutoTokenizer.from_pretrained(signal_model.torch_dir), signal_model.train)
    return QuantizeJob(
        recipe=recipe,
        source=signal_model.torch_dir,
        out_dir=out_dir,
        work_dir=out_dir.parent / f".{out_dir.name}-work",
        calibration=calibration,
        tuning=signal_model.train.select(range(200)),
        inference=InferenceConfig(),
        torch_dir=signal_model.torch_dir,
    )


@pytest.fixture(scope="module")
def inc_int8(signal_model, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("inc-torch") / "int8"
    tuning, table = quantize_job(make_job(signal_model, out_dir))
    return out_dir, tuning, table


def test_inc_torch_runs_real_int8_kernels_and_keeps_accuracy(signal_model, inc_int8):
    import torch

    out_dir, tuning, table = inc_int8
    system = load_system(str(out_dir))  # best_model.pt: claimed by torch-int8 before plain PyTorch
    assert isinstance(system, TorchInt8System)
    assert sum(isinstance(m, torch.ao.nn.quantized.Linear) for m in system.model.modules()) == 14  # 2 layers x 6 + the 2 head Linears
    assert sum(isinstance(m, torch.nn.Linear) for m in system.model.modules()) == 0
    with torch.profiler.profile() as profile:
        system.predict(["the film is very good ."])
    ops = {event.key for event in profile.key_averages()}
    assert "quantized::linear" in ops  # int8 GEMMs, not fake-quant
    assert accuracy(system, signal_model.held_out) >= signal_model.fp32_accuracy - 0.02
    assert tuning["baseline_accuracy"] is not None and len(tuning["trials"]) >= 2
    assert {row["precision"] for row in table} == {"int8"} and len(table) == 14
    # Named as the ONNX export names the same Linears, so multiply-adds can be split by precision.
    onnx_nodes = {node.name for node in onnx.load(str(signal_model.onnx_dir / "model.onnx")).graph.node}
    assert {row["node"] for row in table} <= onnx_nodes


def test_saved_int8_folder_predicts_what_the_tuned_model_predicted(signal_model, inc_int8, tmp_path):
    out_dir = inc_int8[0]
    texts = list(signal_model.held_out["sentence"])[:100]
    first = [p.label for p in TorchInt8System.from_pretrained(str(out_dir)).predict(texts)]
    copied = tmp_path / "copy"
    shutil.copytree(out_dir, copied)
    assert [p.label for p in TorchInt8System.from_pretrained(str(copied)).predict(texts)] == first


def test_keeping_embeddings_fp32_makes_a_bigger_model_with_fp32_tables(signal_model, inc_int8, tmp_path):
    import torch

    quantize_job(make_job(signal_model, tmp_path / "linear-only", operators=("Linear",)))
    linear_only = load_int8_model(tmp_path / "linear-only")
    assert not any(isinstance(m, torch.ao.nn.quantized.Embedding) for m in linear_only.modules())
    assert any(isinstance(m, torch.ao.nn.quantized.Embedding) for m in load_int8_model(inc_int8[0]).modules())
    assert size_mib(tmp_path / "linear-only" / "best_model.pt") > size_mib(inc_int8[0] / "best_model.pt")


def input_scales(model_dir: Path) -> dict:
    """The activation scale INC calibrated for each quantized Linear's input."""
    import torch

    state = torch.load(model_dir / "best_model.pt", weights_only=False)
    return {key: float(value) for key, value in state.items() if key.endswith("_input_scale_0")}


def test_entropy_calibration_changes_the_activation_ranges(signal_model, inc_int8, tmp_path):
    quantize_job(make_job(signal_model, tmp_path / "kl", calibration="entropy"))
    minmax, kl = input_scales(inc_int8[0]), input_scales(tmp_path / "kl")
    assert minmax.keys() == kl.keys() and len(minmax) == 14
    assert minmax != kl


def test_fp32_nodes_must_name_modules(signal_model, tmp_path):
    job = make_job(signal_model, tmp_path / "bad", fp32_nodes=("/classifier/Gemm",))
    with pytest.raises(UserError, match="not modules"):
        get_method("inc-torch")().quantize(job)


def test_config_refuses_what_inc_torch_cannot_do():
    with pytest.raises(UserError, match="operators"):
        Recipe.build("x", "inc-torch", operators=("MatMul",))
    with pytest.raises(UserError, match="optimize_graph"):
        Recipe.build("x", "inc-torch", optimize_graph=True)


def int8_linear_weights(model_dir: Path) -> list:
    import torch

    model = load_int8_model(model_dir)
    return [m.weight().int_repr() for m in model.modules() if isinstance(m, torch.ao.nn.quantized.Linear)]


def test_seven_bit_weights_keep_activations_at_8_bits_where_inc_alone_narrows_the_activations(signal_model, tmp_path, monkeypatch):
    """reduce_range narrows the Linear weights to 7 bits and leaves the activation scales as they
    are; INC left alone on a CPU without VNNI (its REDUCE_RANGE) would halve the activation levels
    instead, which roughly doubles every activation scale."""
    import contextlib

    from neural_compressor.adaptor import pytorch as adaptor

    from sst2bench.quantization import inc_torch

    once = {"max_trials": 1, "tolerable_loss": 0.99, "isa": "none"}
    quantize_job(make_job(signal_model, tmp_path / "eight", **once))
    quantize_job(make_job(signal_model, tmp_path / "seven", reduce_range=True, **once))
    monkeypatch.setattr(inc_torch, "eight_bit_activations", lambda seven_bit_weights: contextlib.nullcontext())
    monkeypatch.setattr(adaptor, "REDUCE_RANGE", True)
    quantize_job(make_job(signal_model, tmp_path / "inc-alone", **once))

    eight, seven = int8_linear_weights(tmp_path / "eight"), int8_linear_weights(tmp_path / "seven")
    assert len(eight) == len(seven) == 14
    assert max(int(w.abs().max()) for w in eight) == 127 and max(int(w.abs().max()) for w in seven) <= 64
    scales = {name: input_scales(tmp_path / name) for name in ("eight", "seven", "inc-alone")}
    assert scales["eight"] == scales["seven"] and len(scales["eight"]) == 14
    ratios = [scales["inc-alone"][key] / scales["eight"][key] for key in scales["eight"]]
    assert all(1.9 < ratio < 2.1 for ratio in ratios), ratios
