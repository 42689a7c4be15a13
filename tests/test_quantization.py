import numpy as np
import pytest

from sst2bench.errors import UserError
from sst2bench.export import export_onnx
from sst2bench.quantization import PRESETS, Recipe, preset
from sst2bench.quantization.run import quantize
from sst2bench.systems import load_system

TEXTS = ["good film .", "a very dull , boring mess", "it 's not great but fun !", "awful", "charming and moving"] * 4


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("fp32-onnx")
    export_onnx(tiny_model_dir, out)
    return out


@pytest.fixture(scope="module")
def sst2(sst2_dir):
    from sst2bench.data import load_sst2_tsv

    data, _ = load_sst2_tsv(sst2_dir, splits=("train", "validation"))
    return data


def test_presets_are_valid_and_named_after_themselves():
    for name, factory in PRESETS.items():
        assert factory().name == name
    assert preset("inc-static").criterion == "relative" and preset("inc-static").tolerable_loss == 0.01
    assert preset("inc-static", max_trials=3).max_trials == 3
    with pytest.raises(UserError, match="unknown recipe"):
        preset("fp4-magic")
    with pytest.raises(UserError, match="calibration"):
        Recipe("x", "ort-static", calibration="average")
    with pytest.raises(UserError, match="strategy"):
        Recipe("x", "inc-static", strategy="greedy")
    with pytest.raises(UserError, match="unknown fields"):
        Recipe.from_dict({"name": "x", "method": "ort-static", "bits": 4})


@pytest.mark.parametrize("name", ["ort-dynamic", "ort-static-qdq", "ort-static-qdq-s8s8", "ort-static-qop-fused-rr", "ort-static-qdq-percentile"])
def test_ort_recipes_produce_a_loadable_int8_model_that_agrees_with_fp32(name, tiny_onnx, sst2, tmp_path):
    record = quantize(preset(name, calibration_samples=16), tiny_onnx, tmp_path / name, sst2["train"])
    assert record["ops"]["MatMul"]["int8"] > 0
    assert (tmp_path / name / "quantization.json").is_file() and record["recipe"]["name"] == name
    assert not list(tmp_path.glob("**/augmented_model.onnx"))
    int8 = load_system(str(tmp_path / name))
    fp32 = load_system(str(tiny_onnx))
    a = np.array([p.probabilities[1] for p in int8.predict(TEXTS)])
    b = np.array([p.probabilities[1] for p in fp32.predict(TEXTS)])
    assert np.abs(a - b).max() < 0.05  # a random tiny model's logits are small; int8 stays close


def test_forced_fallback_shows_in_the_table(tiny_onnx, sst2, tmp_path):
    import onnx

    matmuls = [n.name for n in onnx.load(str(tiny_onnx / "model.onnx")).graph.node if n.op_type == "MatMul"]
    forced = tuple(matmuls[:2])
    record = quantize(preset("ort-static-qdq", calibration_samples=8, fp32_nodes=forced), tiny_onnx, tmp_path / "fallback", sst2["train"])
    fallback = {row["node"] for row in record["fp32_fallback"]}
    assert set(forced) <= fallback
    assert record["ops"]["MatMul"]["int8"] == len(matmuls) - len(forced)


def test_inc_accuracy_aware_tuning_records_trials(tiny_onnx, sst2, tmp_path):
    recipe = preset("inc-static", calibration_samples=16, max_trials=2, tolerable_loss=0.5)
    record = quantize(recipe, tiny_onnx, tmp_path / "inc", sst2["train"], sst2["validation"].select(range(40)))
    trials = record["tuning"]["trials"]
    assert len(trials) >= 2 and all(0 <= t["accuracy"] <= 1 for t in trials)
    assert record["ops"]["MatMul"]["int8"] > 0
    assert not list(tmp_path.glob("**/nc_workspace")) and not (tmp_path.parent / "nc_workspace").exists()
    assert len(load_system(str(tmp_path / "inc")).predict(TEXTS)) == len(TEXTS)
