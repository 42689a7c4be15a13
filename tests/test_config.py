import pytest

from sst2bench.config import load_run, run_config_from_dict
from sst2bench.errors import UserError

from .conftest import REPO


@pytest.mark.parametrize("run", ["standin", "ci", "distilbert"])
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
