import json
from pathlib import Path

import pytest

from sst2bench.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_prints_and_writes_the_same_accuracy(tiny_model_dir, sst2_dir, tmp_path, capsys):
    code, out, err = run(
        capsys,
        "evaluate",
        "--model",
        str(tiny_model_dir),
        "--data-dir",
        str(sst2_dir),
        "--limit",
        "40",
        "--output",
        str(tmp_path),
        "--quiet",
    )
    assert code == 0, err
    result = json.loads((tmp_path / "accuracy.json").read_text())
    assert result["n"] == 40
    assert f"{result['correct']}/40" in out
    assert f"{100 * result['accuracy']:.2f}" in out
    lines = (tmp_path / f"{result['system']}.jsonl").read_text().splitlines()
    assert len(lines) == 40 and json.loads(lines[0])["idx"] == 0
    provenance = result["provenance"]
    assert provenance["packages"]["torch"].startswith("2.13.0")
    assert provenance["params"]["limit"] == 40
    # The recorded ISA flags are what this CPU reports, flag by flag (not merely present as keys).
    cpu_flags = set(
        next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split(":", 1)[1].split()
    )
    isa = provenance["cpu"]["isa"]
    assert {"avx2", "avx512f", "avx512_vnni"} <= set(isa)
    assert isa == {flag: flag in cpu_flags for flag in isa}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "{model}", "--data-dir", "{tmp}/nowhere"], "SST-2 data folder"),
        (["--model", "{tmp}/no-model", "--data-dir", "{data}"], "no such model folder"),
        (["--model", "distilbert/distilbert-base-uncased-finetuned-sst-2-english", "--data-dir", "{data}"], "Hugging Face Hub"),
        (["--model", "{model}", "--data-dir", "{tmp}/broken"], "header is"),
    ],
)
def test_bad_inputs_end_in_one_line(argv, message, tiny_model_dir, sst2_dir, tmp_path, capsys, offline_hub):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "validation.tsv").write_text("sentence\nfine . \n")
    values = {"model": tiny_model_dir, "tmp": tmp_path, "data": sst2_dir}
    code, out, err = run(capsys, "evaluate", "--quiet", *[a.format(**values) for a in argv])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sst2bench: error:") and message in err
    assert "Traceback" not in err


def test_evaluate_with_its_defaults_scores_as_every_run_does(tiny_model_dir, sst2_dir, tmp_path, monkeypatch, capsys):
    """One model, one count: the CLI's defaults are the runs' evaluation protocol (batch 1 matters
    for dynamic int8, whose activation ranges depend on what shares the batch)."""
    import yaml

    from sst2bench.cli import build_parser
    from sst2bench.config import run_config_from_dict
    from sst2bench.stages.accuracy import stage_accuracy
    from sst2bench.stages.model import stage_model

    from .conftest import REPO

    defaults = build_parser().parse_args(["evaluate", "--model", "x"])
    for name in ("standin", "ci", "distilbert"):
        inference = yaml.safe_load((REPO / "params" / f"{name}.yaml").read_text())["inference"]
        assert (defaults.batch_size, defaults.max_length, defaults.padding) == (
            inference["batch_size"],
            inference["max_length"],
            inference["padding"],
        ), name

    code, _, err = run(capsys, "evaluate", "--model", str(tiny_model_dir), "--limit", "60", "--output", str(tmp_path / "cli"), "--quiet")
    assert code == 0, err
    by_cli = json.loads((tmp_path / "cli" / "accuracy.json").read_text())["correct"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params").mkdir()
    cfg = run_config_from_dict(
        {
            "run": "same",
            "model": {"kind": "local", "path": str(tiny_model_dir)},
            "data": {"eval_limit": 60},
            "quantize": {"recipes": []},
            "inference": inference,
        }
    )
    stage_model(cfg, progress=False)
    assert stage_accuracy(cfg, progress=False).systems["fp32-torch"].correct == by_cli


def test_allow_different_models_only_goes_with_compare(capsys):
    """The flag loosens the machine comparison's fp32 check; on a run's own report it would mean nothing."""
    code, _, err = run(capsys, "report", "--runs", "ci", "--allow-different-models")
    assert code == 2 and err.count("\n") == 1 and "--allow-different-models with --compare" in err
