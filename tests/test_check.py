import json
import re
import xml.etree.ElementTree as ET

import pytest

from sst2bench.accuracy import PredictionRecord, accuracy_report, save_predictions
from sst2bench.check import isa_class, run_check, write_junit
from sst2bench.cli import main
from sst2bench.config import load_run, run_config_from_dict
from sst2bench.results import AccuracyResult, LatencyResult, SystemAccuracy, write_result

from .conftest import REPO, measurement

N = 200
# What a committed tree's run records as the code that scored it (the gate writes baselines only from one).
CLEAN_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def predictions(correct: int, flip: tuple[int, ...] = ()) -> list[int]:
    """Predicted labels for gold = idx % 2: the first ``correct`` examples right, the rest wrong,
    then the examples in ``flip`` turned the other way."""
    labels = [i % 2 if i < correct else 1 - i % 2 for i in range(N)]
    for i in flip:
        labels[i] = 1 - labels[i]
    return labels


def write_run(cfg, systems: dict[str, tuple[str, list[int]]], commit: str = CLEAN_COMMIT, gold: list[int] | None = None) -> None:
    """accuracy.json and one predictions JSONL per system, as the accuracy stage writes them,
    scored by ``commit``; gold labels ``idx % 2`` unless given."""
    results = {}
    for name, (family, labels) in systems.items():
        golds = gold or [i % 2 for i in range(len(labels))]
        records = [PredictionRecord(i, g, label, 0.9, [0.1, 0.9]) for i, (g, label) in enumerate(zip(golds, labels))]
        save_predictions(records, cfg.runs_dir / "predictions" / f"{name}.jsonl")
        report = accuracy_report([r.gold for r in records], [r.label for r in records])
        results[name] = SystemAccuracy(**report, system=name, family=family, seconds=0.0, predictions=f"{name}.jsonl")
    n = len(next(iter(systems.values()))[1])
    write_result(
        cfg.runs_dir / "accuracy.json",
        AccuracyResult(split="validation", n=n, systems=results, provenance={"git_commit": commit}),
    )


@pytest.fixture
def gate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params").mkdir()
    # Most tests fabricate int8 runs far from fp32 to exercise one rule; the agreement rule's own
    # tests use its default (GATE_DEFAULTS).
    (tmp_path / "params" / "gate.yaml").write_text("data: {source: tsv}\ncheck: {min_fp32_agreement: 0.9}\n")
    cfg = load_run("gate")
    cfg.runs_dir.mkdir(parents=True)
    return cfg


def by_rule(results):
    return {(r.rule.split()[0], r.system): r for r in results}


def test_relative_floor_is_counted_in_whole_examples_with_the_rounding_printed(gate, monkeypatch):
    # 0.99 × 180 = 178.2 → 179 examples needed
    write_run(gate, {"fp32-torch": ("fp32", predictions(180)), "keeps": ("int8", predictions(179)), "short": ("int8", predictions(178))})
    results = by_rule(run_check(gate))
    assert results[("keeps", "keeps")].passed
    short = results[("keeps", "short")]
    assert not short.passed and short.limit == "≥ 179"
    assert "⌈0.99 × 180 = 178.20⌉ = 179; has 178, 1 short" in short.why


def test_a_missing_baseline_is_a_named_skip_with_the_command_and_require_baseline_fails(gate, capsys):
    write_run(gate, {"fp32-torch": ("fp32", predictions(180)), "int8": ("int8", predictions(180))})
    (skip,) = [r for r in run_check(gate) if r.verdict != "PASS"]
    assert skip.skipped and skip.verdict == "SKIP" and not skip.passed
    assert isa_class() in skip.value and f"params/baselines/gate/{isa_class()}.json" in skip.why
    assert "sst2bench check --run gate --update-baseline" in skip.why and "--require-baseline" in skip.why
    assert main(["check", "--run", "gate"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^SKIP\s+baseline for this ISA class", out, re.M) and out.rstrip().endswith("2 passed, 0 failed, 1 skipped")

    (required,) = [r for r in run_check(gate, require_baseline=True) if r.verdict != "PASS"]
    assert required.verdict == "FAIL" and "--require-baseline makes" not in required.why
    assert main(["check", "--run", "gate", "--require-baseline"]) == 1
    assert capsys.readouterr().out.rstrip().endswith("2 passed, 1 failed")


def fake_cpu_class(monkeypatch, *flags: str) -> None:
    """This process sees a CPU with only ``flags`` (what ``isa_class`` and the baseline path read)."""
    import sst2bench.provenance as provenance_module

    from .test_quantization import fake_cpu

    monkeypatch.setattr(provenance_module, "cpu_info", lambda: fake_cpu(*flags))


def test_the_shipped_ci_gate_passes_on_an_avx2_runner_without_a_baseline_and_uses_the_committed_one(gate, monkeypatch, capsys):
    """The workflow as copied, on GitHub's usual runner (AVX2, no VNNI): with the repo's baselines
    it reads params/baselines/ci/avx2.json; without an avx2 file the churn rule is skipped, not failed."""
    import shutil

    fake_cpu_class(monkeypatch, "avx", "avx2", "fma")
    assert isa_class() == "avx2"
    committed = REPO / "params" / "baselines" / "ci" / "avx2.json"
    baseline = json.loads(committed.read_text())
    assert baseline["isa_class"] == "avx2" and not baseline["dirty"]
    # The ci run's results exactly as that baseline records them, checked with ci.yaml's rules.
    project = gate.runs_dir.parent.parent
    shutil.copy(REPO / "params" / "ci.yaml", project / "params" / "ci.yaml")
    shutil.copytree(REPO / "params" / "baselines", project / "params" / "baselines")
    cfg = load_run("ci")
    cfg.runs_dir.mkdir(parents=True)
    systems = {name: (s["family"], [int(c) for c in s["predicted"]]) for name, s in baseline["systems"].items()}
    assert baseline["idx"] == list(range(len(baseline["idx"])))  # write_run numbers examples from 0
    write_run(cfg, systems, gold=[int(c) for c in baseline["gold"]])
    results = run_check(cfg)
    assert all(r.verdict == "PASS" for r in results) and any(r.rule.startswith("≤") for r in results)
    assert any(r.rule.startswith(f"agrees with fp32 on ≥ {100 * cfg.check.min_fp32_agreement:g} %") for r in results)

    (project / "params" / "baselines" / "ci" / "avx2.json").unlink()
    assert main(["check", "--run", "ci"]) == 0
    out = capsys.readouterr().out
    assert "int8 class avx2" in out and re.search(r"^SKIP\s+baseline for this ISA class", out, re.M) and "1 skipped" in out


def test_isa_class_follows_the_int8_instructions():
    flags = {"avx2": True, "avx512bw": True, "avx512_vnni": False, "avx_vnni": False, "amx_int8": False}
    assert isa_class({"isa": flags}) == "avx512"
    assert isa_class({"isa": {**flags, "avx512_vnni": True}}) == "avx512-vnni"
    assert isa_class({"isa": {**flags, "avx512bw": False}}) == "avx2"
    assert isa_class({"isa": {**flags, "avx512_vnni": True, "amx_int8": True}}) == "amx"


def test_three_flipped_correct_predictions_fail_the_gate_naming_those_examples(gate, capsys):
    # fp32 is weaker than int8 here, so only the baseline rule can fail.
    systems = {"fp32-torch": ("fp32", predictions(170)), "int8": ("int8", predictions(180))}
    write_run(gate, systems)
    assert main(["check", "--run", "gate", "--update-baseline"]) == 0
    assert main(["check", "--run", "gate"]) == 0

    # Two newly wrong examples and one newly right: within the budget of 2, net -1, churn 3.
    write_run(gate, {**systems, "int8": ("int8", predictions(180, flip=(3, 7, 190)))})
    result = by_rule(run_check(gate))[("≤", "int8")]
    assert result.passed and "net -1, churn 3" in result.why and "#3" in result.why and "#190" in result.why

    # Three examples the baseline got right are now wrong and two others now right: net is only -1,
    # but the gross count of newly wrong examples is over the budget.
    write_run(gate, {**systems, "int8": ("int8", predictions(180, flip=(11, 42, 99, 185, 190)))})
    capsys.readouterr()
    assert main(["check", "--run", "gate"]) == 1
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and "int8" in failed[0] and "3 newly wrong" in failed[0]
    assert "newly wrong: #11" in failed[0] and "#42" in failed[0] and "#99" in failed[0] and "net -1, churn 5" in failed[0]
    assert out.rstrip().endswith("3 passed, 1 failed")  # int8's floor and agreement, fp32's churn; int8's churn


def test_a_recipe_added_to_the_ci_run_without_a_baseline_fails_with_the_update_command(gate, monkeypatch):
    ci = load_run(str(REPO / "params" / "ci.yaml"))
    names = ["fp32-torch", "fp32-ort", *ci.quantize.recipes]
    write_run(gate, {name: ("fp32" if name.startswith("fp32") else "int8", predictions(180)) for name in names})
    assert main(["check", "--run", "gate", "--update-baseline"]) == 0

    added = run_config_from_dict({"run": "gate", "data": {"source": "tsv"}, "quantize": {"recipes": [*ci.quantize.recipes, "ort-dynamic"]}})
    write_run(
        added,
        {
            name: ("fp32" if name.startswith("fp32") else "int8", predictions(180))
            for name in ["fp32-torch", "fp32-ort", *added.quantize.recipes]
        },
    )
    failed = [r for r in run_check(added) if not r.passed]
    assert [(r.rule, r.system) for r in failed] == [("in the baseline", "ort-dynamic")]
    assert "sst2bench check --run gate --update-baseline --systems ort-dynamic" in failed[0].why

    assert main(["check", "--run", "gate", "--update-baseline", "--systems", "ort-dynamic"]) == 0
    assert all(r.passed for r in run_check(added))


def test_a_baseline_system_the_run_no_longer_produces_fails(gate):
    write_run(gate, {"fp32-torch": ("fp32", predictions(180)), "int8": ("int8", predictions(180))})
    assert main(["check", "--run", "gate", "--update-baseline"]) == 0
    write_run(gate, {"fp32-torch": ("fp32", predictions(180))})
    (failure,) = [r for r in run_check(gate) if not r.passed]
    assert failure.system == "int8" and failure.value == "not produced"


def test_the_speed_rule_fails_a_system_without_a_ratio_instead_of_skipping_it(gate):
    cfg = run_config_from_dict({"run": "gate", "data": {"source": "tsv"}, "check": {"min_speedup": 1.5}})
    # Per-round p50s: "fast" is 2x in every round; "flaky" has a median of 2x but one round at 1.2x.
    rounds = {"fp32-ort": [8, 8, 8, 8, 8], "fast": [4, 4, 4, 4, 4], "flaky": [4, 4, 4, 4, 6.7]}
    write_run(cfg, {"fp32-torch": ("fp32", predictions(180)), **{n: ("int8", predictions(180)) for n in ("fast", "flaky", "unmeasured")}})
    write_result(
        cfg.runs_dir / "latency.json", LatencyResult(results=[measurement(name, round_p50_ms=p50s) for name, p50s in rounds.items()])
    )
    results = {r.system: r for r in run_check(cfg) if r.rule.startswith("int8 ≥")}
    assert results["fast"].passed and results["fast"].value == "2.00x [2.00–2.00]"
    assert not results["flaky"].passed and results["flaky"].value.startswith("2.00x [1.19")  # the low end decides
    assert not results["unmeasured"].passed and results["unmeasured"].value == "not measured"


def test_bad_check_params_stop_at_load_naming_the_key():
    from sst2bench.errors import UserError

    with pytest.raises(UserError, match=r"check.*max_newly_wrong"):
        run_config_from_dict({"run": "x", "check": {"max_newly_wrong": -1}})


def test_junit_lists_every_rule_and_its_failures(gate, tmp_path):
    write_run(gate, {"fp32-torch": ("fp32", predictions(180)), "bad": ("int8", predictions(150))})
    results = run_check(gate)
    write_junit(results, tmp_path / "junit.xml", "gate")
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    # the floor and agreement fail; the missing baseline is skipped, with the command that records it
    assert suite.get("tests") == str(len(results)) and suite.get("failures") == "2" and suite.get("skipped") == "1"
    assert len(suite.findall("testcase/failure")) == 2
    (skipped,) = suite.findall("testcase/skipped")
    assert "--update-baseline" in skipped.get("message")


GATE_DEFAULTS = "data: {source: tsv}\n"


def test_thirty_flips_with_two_newly_wrong_fail_the_agreement_rule_alone(gate, capsys):
    """fp32 170/200. The baseline's int8 already differs from fp32 on 28 examples (12 fp32 got
    right, 16 it got wrong): 174 correct. Now two more right ones flip: 30 flips, 172 correct
    (floor 169), 2 newly wrong (budget 2). Only agreement with fp32 (98 %: 196 of 200) catches it."""
    (gate.runs_dir.parent.parent / "params" / "gate.yaml").write_text(GATE_DEFAULTS)
    fp32 = predictions(170)
    before = predictions(170, flip=(*range(12), *range(170, 186)))
    write_run(gate, {"fp32-torch": ("fp32", fp32), "int8": ("int8", before)})
    assert main(["check", "--run", "gate", "--update-baseline"]) == 0
    write_run(gate, {"fp32-torch": ("fp32", fp32), "int8": ("int8", predictions(170, flip=(*range(14), *range(170, 186))))})
    capsys.readouterr()
    assert main(["check", "--run", "gate"]) == 1
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and "agrees with fp32 on ≥ 98 %" in failed[0] and "170/200" in failed[0] and "30 flips" in failed[0]
    assert re.search(r"^PASS\s+≤ 2 examples newly wrong vs baseline\s+int8\s+2 newly wrong", out, re.M)  # within budget


def test_a_baseline_is_refused_from_uncommitted_code_unless_marked_dirty(gate, capsys):
    write_run(gate, {"fp32-torch": ("fp32", predictions(180)), "int8": ("int8", predictions(180))}, commit=CLEAN_COMMIT + "-dirty")
    path = gate.runs_dir.parent.parent / "params" / "baselines" / "gate" / f"{isa_class()}.json"
    assert main(["check", "--run", "gate", "--update-baseline"]) != 0
    assert "a baseline must come from committed code" in capsys.readouterr().err and not path.exists()
    assert main(["check", "--run", "gate", "--update-baseline", "--allow-dirty"]) == 0
    assert "MARKED DIRTY" in capsys.readouterr().out
    written = json.loads(path.read_text())
    assert written["dirty"] is True and written["git_commit"] == CLEAN_COMMIT + "-dirty"
    assert main(["check", "--run", "gate"]) == 0
    assert "written from uncommitted code" in capsys.readouterr().out

    # Clean code rewriting one system of a dirty file: the others still came from dirty code.
    write_run(gate, {"fp32-torch": ("fp32", predictions(180)), "int8": ("int8", predictions(180))})
    assert main(["check", "--run", "gate", "--update-baseline", "--systems", "int8"]) == 0
    merged = json.loads(path.read_text())
    assert merged["dirty"] is True and CLEAN_COMMIT + "-dirty (the rest)" in merged["git_commit"]
    assert main(["check", "--run", "gate", "--update-baseline"]) == 0
    assert json.loads(path.read_text())["dirty"] is False


@pytest.mark.slow
def test_a_corrupted_int8_model_fails_the_gate_end_to_end(sst2_dir, tmp_path, monkeypatch, capsys):
    """Real stand-in, short fine-tune, real int8; then its weights are zeroed and `check` must fail.
    Slow (a fine-tune): make check runs the gate on the real stand-in, and the rules' failures are
    tested on fabricated runs above."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from sst2bench.stages.accuracy import stage_accuracy
    from sst2bench.stages.model import stage_model
    from sst2bench.stages.quantize import stage_quantize

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SST2_DATA_DIR", str(sst2_dir))
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "gate.yaml").write_text(
        "model: {kind: standin, finetune: {train_examples: 1500, epochs: 1.0, threads: 2}}\n"
        "data: {eval_limit: 300, tuning: {size: 200}}\nquantize: {recipes: [ort-dynamic-pc]}\ncloudflare: {enabled: false}\n"
        "inference: {batch_size: 1, threads: 2}\n"
        # A short fine-tune's int8 may lose and flip a little; a broken one loses and flips a lot.
        "check: {min_relative_accuracy: 0.90, min_fp32_agreement: 0.9}\n"
    )
    cfg = load_run("gate")
    stage_model(cfg, progress=False)
    # The stand-in was fitted without the tuning sentences' phrases, and its card names both sets by checksum.
    record, card = json.loads((cfg.fp32_dir / "standin.json").read_text()), (cfg.fp32_dir / "README.md").read_text()
    assert record["fit_data"]["tuning"]["rows"] == record["tuning"]["n"] == 100 == record["fit_data"]["select"]["rows"]  # 200 in halves
    assert record["fit_data"]["fine_tune_rows"] == 1500
    assert record["fit_data"]["train"]["rows"] + record["fit_data"]["removed_train_rows"] == 67_349
    fit = record["fit_data"]
    assert fit["tuning"]["sha256"] in card and fit["select"]["sha256"] in card and fit["train"]["sha256"] in card
    stage_quantize(cfg, progress=False)
    stage_accuracy(cfg, progress=False)
    # --allow-dirty: the test is about a broken model, and a developer's tree may hold uncommitted work.
    assert main(["check", "--run", "gate", "--update-baseline", "--allow-dirty"]) == 0
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
    assert re.search(r"^FAIL\s+keeps ≥ 90 % of fp32's correct count\s+ort-dynamic-pc", out, re.M)
    assert re.search(r"^FAIL\s+≤ 2 examples newly wrong vs baseline\s+ort-dynamic-pc", out, re.M)


def test_changed_gold_labels_fail_instead_of_counting_as_churn(gate):
    write_run(gate, {"fp32-torch": ("fp32", predictions(180)), "int8": ("int8", predictions(180))})
    assert main(["check", "--run", "gate", "--update-baseline"]) == 0
    baseline = next((gate.runs_dir.parent.parent / "params" / "baselines" / "gate").glob("*.json"))
    values = json.loads(baseline.read_text())
    values["gold"] = ("1" if values["gold"][0] == "0" else "0") + values["gold"][1:]
    baseline.write_text(json.dumps(values))
    (failure,) = [r for r in run_check(gate) if not r.passed and r.rule == "same labels as the baseline"]
    assert "#0" in failure.why


def test_a_remote_endpoint_is_gated_like_any_other_system_on_the_examples_it_scored(gate):
    from sst2bench.results import EndpointResult

    write_run(gate, {"fp32-torch": ("fp32", predictions(180)), "int8": ("int8", predictions(180))})
    assert main(["check", "--run", "gate", "--update-baseline"]) == 0
    labels = predictions(20)[:20]  # the endpoint answered the first 20 examples, all right
    records = [PredictionRecord(i, i % 2, label, 0.9, [0.1, 0.9]) for i, label in enumerate(labels)]
    save_predictions(records, gate.runs_dir / "predictions" / "remote.jsonl")
    report = accuracy_report([r.gold for r in records], [r.label for r in records])
    remote = SystemAccuracy(**report, system="remote", family="int8", seconds=0.0, predictions="remote.jsonl", latency="network")
    write_result(gate.runs_dir / "cloudflare.json", EndpointResult(n=20, system=remote))
    results = {(r.rule.split()[0], r.system): r for r in run_check(gate)}
    floor = results[("keeps", "remote")]
    assert floor.passed and "⌈0.99 × 20 = 19.80⌉ = 20; has 20" in floor.why  # fp32's count on those 20
    assert not results[("in", "remote")].passed and "--systems remote" in results[("in", "remote")].why
