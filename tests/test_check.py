import json
import xml.etree.ElementTree as ET

import pytest

from sst2bench.check import interval_budget, run_check, write_baseline, write_junit
from sst2bench.cli import main
from sst2bench.config import run_config_from_dict


def system(correct, n=872, family="int8", width=0.04):
    accuracy = correct / n
    return {"correct": correct, "n": n, "accuracy": accuracy, "accuracy_ci95": [accuracy - width / 2, accuracy + width / 2], "family": family}


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = run_config_from_dict({"run": "gate"})
    cfg.runs_dir.mkdir(parents=True)
    return cfg


def write_accuracy(cfg, systems):
    (cfg.runs_dir / "accuracy.json").write_text(json.dumps({"status": "done", "systems": systems}))


def test_gate_passes_a_small_loss_and_fails_a_large_one(run_dir):
    write_accuracy(run_dir, {"fp32-torch": system(790, family="fp32"), "good-int8": system(785), "bad-int8": system(760)})
    results = {(r.rule.split()[0], r.system): r for r in run_check(run_dir, baseline_file=None)}
    assert results[("keeps", "good-int8")].passed
    assert not results[("keeps", "bad-int8")].passed
    assert "below 99 %" in results[("keeps", "bad-int8")].why
    assert not results[("no", "all")].passed  # no baseline yet: say how to make one


def test_baseline_budget_comes_from_the_interval(run_dir, tmp_path):
    fp32 = system(790, family="fp32", width=0.01)
    write_accuracy(run_dir, {"fp32-torch": fp32, "int8": system(788, width=0.01)})
    baseline = tmp_path / "baseline.json"
    write_baseline(run_dir, baseline)
    budget = interval_budget(system(788, width=0.01))
    assert budget == round(0.005 * 872)
    write_accuracy(run_dir, {"fp32-torch": fp32, "int8": system(788 - budget)})
    assert all(r.passed for r in run_check(run_dir, str(baseline)))
    write_accuracy(run_dir, {"fp32-torch": fp32, "int8": system(788 - budget - 1)})
    failed = [r for r in run_check(run_dir, str(baseline)) if not r.passed]
    assert [(r.rule, r.system) for r in failed] == [("no loss against baseline", "int8")]
    assert f"lost {budget + 1} examples" in failed[0].why


def test_junit_lists_every_rule_and_its_failures(run_dir, tmp_path):
    write_accuracy(run_dir, {"fp32-torch": system(790, family="fp32"), "bad": system(700)})
    results = run_check(run_dir, None)
    write_junit(results, tmp_path / "junit.xml", "gate")
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("tests") == str(len(results)) and suite.get("failures") == "2"
    assert len(suite.findall("testcase/failure")) == 2


def test_a_corrupted_int8_model_fails_the_gate_end_to_end(sst2_dir, tmp_path, monkeypatch, capsys):
    """Real stand-in, short fine-tune, real int8; then its weights are zeroed and `check` must fail."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from sst2bench.stages import stage_accuracy, stage_model, stage_quantize

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SST2_DATA_DIR", str(sst2_dir))
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "gate.yaml").write_text(
        "model: {kind: standin, finetune: {train_examples: 1500, epochs: 1.0, threads: 2}}\n"
        "data: {eval_limit: 300}\nquantize: {recipes: [ort-dynamic-pc]}\ncloudflare: {enabled: false}\n"
        "inference: {batch_size: 1, threads: 2}\n"
        "check: {min_relative_accuracy: 0.90}\n"  # a short fine-tune's int8 may lose a little; a broken one loses a lot
    )
    from sst2bench.config import load_run

    cfg = load_run("gate")
    stage_model(cfg, progress=False)
    stage_quantize(cfg, progress=False)
    stage_accuracy(cfg, progress=False)
    assert main(["check", "--run", "gate", "--update-baseline"]) == 0
    assert main(["check", "--run", "gate"]) == 0

    path = cfg.models_dir / "int8" / "ort-dynamic-pc" / "model.onnx"
    model = onnx.load(str(path))
    for tensor in model.graph.initializer:
        if tensor.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
            tensor.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(tensor)), tensor.name))
    onnx.save(model, str(path))
    stage_accuracy(cfg, progress=False)
    capsys.readouterr()
    assert main(["check", "--run", "gate"]) == 1
    out = capsys.readouterr().out
    assert "FAIL keeps ≥ 90 % of fp32 accuracy" in out and "ort-dynamic-pc" in out
    assert "FAIL no loss against baseline" in out
