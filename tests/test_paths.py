"""Paths a user types are read against the folder they typed them in, whatever runs later."""

import json
import os
import subprocess
import sys

from sst2bench.paths import anchor_user_paths, user_path


def test_a_relative_data_dir_is_anchored_once_where_it_was_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environ = {"SST2_DATA_DIR": "../shared/data/sst2"}
    anchor_user_paths(environ)
    assert environ["SST2_DATA_DIR"] == str(tmp_path.parent / "shared" / "data" / "sst2")
    monkeypatch.chdir(tmp_path.parent)
    anchor_user_paths(environ)  # a second call, from elsewhere, changes nothing
    assert environ["SST2_DATA_DIR"] == str(tmp_path.parent / "shared" / "data" / "sst2")
    assert user_path(None) is None and user_path("") is None


def run_cli(args, cwd, data_dir):
    env = {**os.environ, "SST2_DATA_DIR": data_dir}
    return subprocess.run([sys.executable, "-m", "sst2bench", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_run_from_another_folder_reads_relative_paths_from_there(tmp_path, tiny_model_dir, sst2_dir):
    typed_in = tmp_path / "somewhere" / "else"
    typed_in.mkdir(parents=True)
    model = os.path.relpath(tiny_model_dir, typed_in)
    data = os.path.relpath(sst2_dir, typed_in)
    done = run_cli(["evaluate", "--model", model, "--limit", "12", "--output", "out", "--quiet"], typed_in, data)
    assert done.returncode == 0, done.stderr
    result = json.loads((typed_in / "out" / "accuracy.json").read_text())
    assert result["n"] == 12


def test_a_data_dir_that_does_not_exist_is_one_clear_error(tmp_path, tiny_model_dir):
    done = run_cli(["evaluate", "--model", str(tiny_model_dir), "--limit", "12", "--quiet"], tmp_path, "no/such/folder")
    assert done.returncode == 2
    assert done.stderr.startswith("sst2bench: error:") and str(tmp_path / "no" / "such" / "folder") in done.stderr
    assert "Traceback" not in done.stderr
