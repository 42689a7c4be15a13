"""The run's other evaluation sets: scored by the accuracy stage like SST-2, reported per set."""

import pytest

from sst2bench.config import run_config_from_dict
from sst2bench.errors import UserError
from sst2bench.stages.accuracy import stage_accuracy
from sst2bench.stages.model import stage_model


@pytest.fixture
def project(tmp_path, monkeypatch, sst2_dir):
    (tmp_path / "params").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SST2_DATA_DIR", str(sst2_dir))
    (tmp_path / "mine.csv").write_text("review,stars\ngood film,5\nawful mess,1\nboring and dull,2\ncharming and moving,4\n")
    return tmp_path


def run_with(model_dir, sets):
    values = {
        "model": {"kind": "local", "path": str(model_dir)},
        "data": {"eval_limit": 20, "tuning": {"size": 30}},
        "quantize": {"recipes": []},
    }
    return run_config_from_dict({"run": "sets", **values, "evaluation_sets": sets})


MINE = {
    "name": "mine",
    "source": "mine.csv",
    "text_column": "review",
    "label_column": "stars",
    "label_map": {"1": "NEGATIVE", "2": "NEGATIVE", "4": "POSITIVE", "5": "POSITIVE"},
}


def test_each_set_is_scored_for_every_system_and_a_missing_file_is_skipped_with_why(project, tiny_model_dir):
    cfg = run_with(tiny_model_dir, [MINE, {"name": "gone", "source": "not/here.tsv"}])
    stage_model(cfg, progress=False)
    result = stage_accuracy(cfg, progress=False)
    mine = result.sets["mine"]
    assert mine.status == "done" and mine.n == 4 and set(mine.systems) == {"fp32-torch", "fp32-ort", "fp32-ort-fused", "fp32-openvino"}
    assert mine.systems["fp32-ort"].vs_fp32.n == 4 and mine.systems["fp32-torch"].n == 4
    assert (project / "runs" / "sets" / "predictions" / "mine" / "fp32-ort.jsonl").is_file()
    gone = result.sets["gone"]
    assert gone.status == "skipped" and "not/here.tsv does not exist" in gone.reason
    assert result.systems["fp32-torch"].n == 20  # SST-2's eval split is scored as before


def test_a_bad_set_stops_the_stage_naming_the_file_and_row(project, tiny_model_dir):
    (project / "mine.csv").write_text("review,stars\ngood film,5\nawful mess,3\n")
    cfg = run_with(tiny_model_dir, [MINE])
    stage_model(cfg, progress=False)
    with pytest.raises(UserError, match=r"mine\.csv.*3"):
        stage_accuracy(cfg, progress=False)
    assert not (project / "runs" / "sets" / "accuracy.json").exists()


def test_set_names_and_keys_are_checked_at_load():
    with pytest.raises(UserError, match="evaluation set name"):
        run_config_from_dict({"run": "x", "evaluation_sets": [{"name": "a/b", "source": "x.csv"}]})
    with pytest.raises(UserError, match=r"evaluation_sets\[0\]: unknown keys \['sourc'\]"):
        run_config_from_dict({"run": "x", "evaluation_sets": [{"name": "a", "sourc": "x.csv"}]})
