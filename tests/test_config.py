import pytest

from sst2bench.config import load_run, run_config_from_dict
from sst2bench.errors import UserError

from .conftest import REPO


@pytest.mark.parametrize("run", ["standin", "ci", "distilbert", "standin-seed2", "ci-seed2", "standin-studies"])
def test_committed_runs_load(run):
    cfg = load_run(run, params_dir=REPO / "params")
    assert cfg.run == run and cfg.quantize.recipe_objects()


def test_typos_and_bad_values_name_the_key(tmp_path):
    with pytest.raises(UserError, match=r"params\.latency: unknown keys \['batchsize'\]"):
        run_config_from_dict({"run": "x", "latency": {"batchsize": [1]}})
    with pytest.raises(UserError, match="unknown recipes"):
        run_config_from_dict({"run": "x", "quantize": {"recipes": ["int4"]}})
    with pytest.raises(UserError, match="needs model.hub_id"):
        run_config_from_dict({"run": "x", "model": {"kind": "hub"}})
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_run(str(tmp_path / "bad.yaml"))
    with pytest.raises(UserError, match="runs: "):
        load_run("nope", params_dir=tmp_path)


def test_a_run_that_extends_another_changes_only_what_it_names(tmp_path):
    """``extends``: mappings merged key by key, lists and values replaced; the run is named by its own
    file; a loop, a missing parent and a non-name are refused."""
    (tmp_path / "base.yaml").write_text(
        "model: {kind: standin, finetune: {seed: 42, epochs: 1.0}}\nquantize: {recipes: [ort-dynamic, ort-static-qdq], threads: 2}\n"
    )
    (tmp_path / "child.yaml").write_text("extends: base\nmodel: {finetune: {seed: 2}}\nquantize: {recipes: [ort-dynamic]}\n")
    base, child = load_run("base", params_dir=tmp_path), load_run("child", params_dir=tmp_path)
    assert (child.run, child.model.finetune.seed, child.model.finetune.epochs) == ("child", 2, 1.0)
    assert child.model.kind == "standin" and child.quantize.recipes == ["ort-dynamic"] and child.quantize.threads == 2
    assert (base.run, base.model.finetune.seed, base.quantize.recipes) == ("base", 42, ["ort-dynamic", "ort-static-qdq"])
    committed = load_run("standin-seed2", params_dir=REPO / "params")
    assert committed.model.finetune.seed != load_run("standin", params_dir=REPO / "params").model.finetune.seed
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    with pytest.raises(UserError, match="loops back"):
        load_run("a", params_dir=tmp_path)
    (tmp_path / "orphan.yaml").write_text("extends: nowhere\n")
    with pytest.raises(UserError, match="no run 'nowhere'"):
        load_run("orphan", params_dir=tmp_path)
    (tmp_path / "two.yaml").write_text("extends: [base, child]\n")
    with pytest.raises(UserError, match="extends must name one run"):
        load_run("two", params_dir=tmp_path)


def test_studies_off_names_only_the_studies_the_params_ask_for():
    from sst2bench.studies import studies_skipped

    def studies_off(values):
        return studies_skipped(run_config_from_dict(values).to_dict())

    asked = {"quantize": {"calibration_seeds": [42, 1]}, "data": {"tuning": {"also_on_reported": True}}}
    assert studies_off({"run": "x", **asked}) == []  # on: nothing is skipped
    off = studies_off({"run": "x", "studies": False, **asked})
    assert len(off) == 2 and "calibration_seeds" in off[0] and "also_on_reported" in off[1]
    assert studies_off({"run": "x", "studies": False}) == []  # nothing asked, nothing skipped
    with pytest.raises(UserError, match="studies must be true or false"):
        run_config_from_dict({"run": "x", "studies": "no"})


def test_every_params_section_is_in_the_key_of_a_stage_that_reads_it():
    """A params key no stage's cache key holds would change nothing on the next make report (as
    `studies` did, until the quantize stage listed it)."""
    import dataclasses

    from sst2bench.config import RunConfig
    from sst2bench.pipeline import STAGES

    keyed = {section for stage in STAGES for section in stage.params_sections}
    assert {f.name for f in dataclasses.fields(RunConfig)} - keyed == {"run", "description"}
    assert "studies" in next(s for s in STAGES if s.name == "quantize").params_sections
