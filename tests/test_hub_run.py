"""The mission's own run, exercised: params/distilbert.yaml end to end against a local Hugging Face Hub.

A real Hub-API server (olah, from ``.venv-hub``: ``make hub-server``) serves three git repositories
under the ids the run names: the fp32 DistilBERT classifier, Intel's int8 ONNX reference and
``nyu-mll/glue`` with config ``sst2``. Each repository's ``main`` moves on after the commit the run
pins, so a download that ignored the pin would fetch different bytes. ``HF_ENDPOINT`` is the only
seam: nothing in the download path is patched. The notebooks run in papermill kernels that inherit
the environment set here.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import yaml

from .conftest import REPO, build_tiny_distilbert
from .hub_server import OLAH_CLI, HubServer, git_repo

# About a minute in all (2 cores, idle): building the repositories and one pipeline run (~45 s),
# then three runs that stop early.
MODEL_ID = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
REFERENCE_ID = "Intel/distilbert-base-uncased-finetuned-sst-2-english-int8-static-inc"
SWAPPED_ID = "distilbert/swapped-labels-sst2"
GLUE_ID = "nyu-mll/glue"
MISSING_SHA = "deadbeef" * 5
# Rows of the real SST-2 files in the pinned glue commit; main then drops some, so counts tell which was read.
PINNED_ROWS = {"train": 200, "validation": 60, "test": 20}
MAIN_ROWS = {"train": 100, "validation": 30, "test": 10}
GLUE_README = """---
configs:
- config_name: sst2
  data_files:
  - split: train
    path: sst2/train-00000-of-00001.parquet
  - split: validation
    path: sst2/validation-00000-of-00001.parquet
  - split: test
    path: sst2/test-00000-of-00001.parquet
dataset_info:
- config_name: sst2
  features:
  - name: sentence
    dtype: string
  - name: label
    dtype:
      class_label:
        names:
          '0': negative
          '1': positive
  - name: idx
    dtype: int32
---
# GLUE SST-2 (a small copy for tests)
"""


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_glue(folder, sst2_dir, rows: dict[str, int]):
    """``sst2/{split}-00000-of-00001.parquet`` (sentence, label, idx) from the first rows of the GLUE TSVs, and the README."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sst2bench.data import read_split_tsv

    (folder / "sst2").mkdir(parents=True, exist_ok=True)
    for split, n in rows.items():
        columns = read_split_tsv(sst2_dir / f"{split}.tsv", split, check_rows=False)
        table = pa.table(
            {
                "sentence": pa.array(columns["sentence"][:n], pa.string()),
                "label": pa.array(columns["label"][:n], pa.int64()),
                "idx": pa.array(columns["idx"][:n], pa.int32()),
            }
        )
        pq.write_table(table, folder / "sst2" / f"{split}-00000-of-00001.parquet")
    (folder / "README.md").write_text(GLUE_README)
    return folder


def write_int8_reference(model_dir, folder):
    """Like Intel's published int8 repo: model.onnx (int8), config.json and the tokenizer files."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from sst2bench.export import export_onnx

    exported = folder.parent / (folder.name + "-fp32")
    export_onnx(model_dir, exported)
    folder.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(exported / "model.onnx"), str(folder / "model.onnx"), weight_type=QuantType.QInt8)
    for item in exported.iterdir():
        if item.is_file() and item.suffix != ".onnx":
            shutil.copy2(item, folder / item.name)
    return folder


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory, sst2_dir):
    """The three repositories (each with a pinned commit and a later main) served by olah; stopped at the end."""
    if not OLAH_CLI.is_file():
        pytest.fail(f"{OLAH_CLI} is missing: run `make hub-server` (it creates .venv-hub with olah, the local Hub server this test needs)")
    root = tmp_path_factory.mktemp("hub")
    mirrors, build = root / "mirrors", root / "build"
    pinned = {}

    fp32 = build_tiny_distilbert(build / "fp32-pinned", seed=1)
    pinned["model"] = git_repo(mirrors, "models", MODEL_ID, fp32, "fp32 classifier")
    pinned["model_weights"] = sha256(fp32 / "model.safetensors")
    later = build_tiny_distilbert(build / "fp32-later", seed=2)
    main_model = git_repo(mirrors, "models", MODEL_ID, later, "newer weights")

    reference = write_int8_reference(fp32, build / "int8-pinned")
    pinned["reference"] = git_repo(mirrors, "models", REFERENCE_ID, reference, "int8 (ORT dynamic)")
    pinned["reference_onnx"] = sha256(reference / "model.onnx")
    git_repo(mirrors, "models", REFERENCE_ID, write_int8_reference(later, build / "int8-later"), "newer int8")

    swapped = build_tiny_distilbert(build / "swapped", seed=1, id2label={0: "POSITIVE", 1: "NEGATIVE"})
    pinned["swapped"] = git_repo(mirrors, "models", SWAPPED_ID, swapped, "labels the other way round")

    pinned["glue"] = git_repo(mirrors, "datasets", GLUE_ID, write_glue(build / "glue-pinned", sst2_dir, PINNED_ROWS), "sst2")
    shutil.rmtree(build / "glue-pinned" / "sst2")
    glue_main = git_repo(mirrors, "datasets", GLUE_ID, write_glue(build / "glue-pinned", sst2_dir, MAIN_ROWS), "fewer rows")
    assert len({pinned["model"], main_model}) == 2 and pinned["glue"] != glue_main

    server = HubServer(mirrors, root / "server").start()
    try:
        yield server, pinned, root
    finally:
        server.stop()


def use_local_hub(patch: pytest.MonkeyPatch, server: HubServer, root) -> None:
    """The environment of a machine whose Hub is the local server: HF_ENDPOINT, caches in tmp, no SST-2 folder.

    Papermill kernels started after this inherit it. The caches are module-wide, so the
    wrong-revision checks run against a datasets cache that already holds the pinned copy.
    """
    from sst2bench import hub

    patch.setenv("HF_ENDPOINT", server.url)
    patch.setenv("HF_HOME", str(root / "hf-home"))
    patch.setenv("HF_HUB_CACHE", str(root / "hf-home" / "hub"))
    patch.setenv("HF_DATASETS_CACHE", str(root / "hf-home" / "datasets"))
    patch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    patch.setenv("NO_PROXY", "127.0.0.1,localhost")
    patch.setenv("no_proxy", "127.0.0.1,localhost")
    # CI exports HF_HUB_OFFLINE=1; SST-2 must come from the Hub, not a folder; no credentials of any kind.
    for name in (
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "SST2_DATA_DIR",
        "HF_TOKEN",
        "CLOUDFLARE_ACCOUNT_ID",
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_BASE_URL",
    ):
        patch.delenv(name, raising=False)
    hub.hub_reachable.cache_clear()  # lru_cached: it may hold an answer from before this environment


@pytest.fixture
def hub_env(local_hub, monkeypatch):
    from sst2bench import hub

    server, pinned, root = local_hub
    use_local_hub(monkeypatch, server, root)
    yield server, pinned, root
    hub.hub_reachable.cache_clear()


def write_run(workspace, name: str, pinned: dict, **changes) -> None:
    """params/distilbert.yaml with the local Hub's revisions, two recipes and short benchmarks."""
    params = yaml.safe_load((REPO / "params" / "distilbert.yaml").read_text())
    assert params["model"]["hub_id"] == MODEL_ID and params["reference"]["hub_id"] == REFERENCE_ID
    params["model"]["revision"] = pinned["model"][:7]  # short, as the real params pin it
    params["reference"]["revision"] = pinned["reference"]
    params["data"]["revision"] = pinned["glue"]
    params["quantize"] = {
        "recipes": ["ort-dynamic", "inc-static"],
        "threads": 1,
        "overrides": {"inc-static": {"calibration_samples": 16, "max_trials": 2}},
    }
    params["inference"]["threads"] = 1
    params["latency"] = {
        "batch_sizes": [1],
        "paddings": ["dynamic"],
        "threads": [1],
        "samples": 4,
        "warmup": 1,
        "iterations": 3,
        "duration_s": 1.0,
    }
    params["cloudflare"] = {"enabled": False}
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        params[section][key] = value
    (workspace / "params" / f"{name}.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def hub_run(local_hub, tmp_path_factory):
    """Run `distilbert` (revisions swapped for the local Hub's) through the papermill pipeline once."""
    from sst2bench.pipeline import report

    server, pinned, root = local_hub
    workspace = tmp_path_factory.mktemp("workspace")
    shutil.copytree(REPO / "notebooks", workspace / "notebooks")
    shutil.copytree(REPO / "params" / "published", workspace / "params" / "published")
    write_run(workspace, "distilbert", pinned)
    with pytest.MonkeyPatch.context() as patch:
        use_local_hub(patch, server, root)
        patch.chdir(workspace)
        from sst2bench import hub

        lines = []
        before = len(server.requests())
        try:
            statuses = report(["distilbert"], echo=lines.append)
        finally:
            hub.hub_reachable.cache_clear()
    return workspace, statuses, lines, server.requests()[before:]


def test_distilbert_run_downloads_pinned_revisions_and_reports_the_reference(hub_run, local_hub):
    workspace, statuses, lines, requests = hub_run
    server, pinned, _ = local_hub
    assert statuses["distilbert"]["status"] == "done", (statuses, lines)
    runs = workspace / "runs" / "distilbert"

    # the fp32 model: the pinned commit's weights (main has others), labels checked, exported and agreeing
    model = json.loads((runs / "model.json").read_text())
    assert model["status"] == "done"
    fp32 = workspace / "models" / "distilbert" / "fp32"
    assert sha256(fp32 / "model.safetensors") == pinned["model_weights"]
    assert json.loads((fp32 / "config.json").read_text())["id2label"] == {"0": "NEGATIVE", "1": "POSITIVE"}
    assert model["onnx_agreement"]["n"] == PINNED_ROWS["validation"]
    # SST-2 from the Hub at the pinned commit (its validation split has 60 rows, main's 30)
    assert {f["split"]: f["rows"] for f in model["data_files"]} == {"train": PINNED_ROWS["train"], "validation": PINNED_ROWS["validation"]}
    assert all(f"{GLUE_ID}@{pinned['glue']}/sst2/" in f["path"] for f in model["data_files"])

    # the reference row, measured
    reference = workspace / "models" / "distilbert" / "reference" / "model.onnx"
    assert sha256(reference) == pinned["reference_onnx"]
    accuracy = json.loads((runs / "accuracy.json").read_text())
    assert accuracy["n"] == PINNED_ROWS["validation"] and accuracy["skipped"] == {}
    assert set(accuracy["systems"]) == {
        "fp32-torch",
        "fp32-ort",
        "fp32-ort-fused",
        "fp32-openvino",
        "ort-dynamic",
        "inc-static",
        "intel-int8-published",
    }
    assert accuracy["systems"]["intel-int8-published"]["family"] == "int8"
    assert "vs_fp32" in accuracy["systems"]["intel-int8-published"]
    latency = json.loads((runs / "latency.json").read_text())
    assert latency["skipped"] == {} and "intel-int8-published" in {r["system"] for r in latency["results"]}
    html = (workspace / "reports" / "distilbert" / "index.html").read_text()
    assert "intel-int8-published" in html and "ort-dynamic" in html and "inc-static" in html

    # what the server was asked: each repository at its pinned commit, never at main
    got = [(method, path) for method, path, status in requests if status == 200]
    assert ("GET", f"/api/models/{MODEL_ID}/revision/{pinned['model'][:7]}") in got
    assert ("GET", f"/{MODEL_ID}/resolve/{pinned['model']}/model.safetensors") in got
    assert ("GET", f"/api/models/{REFERENCE_ID}/revision/{pinned['reference']}") in got
    assert ("GET", f"/{REFERENCE_ID}/resolve/{pinned['reference']}/model.onnx") in got
    assert ("GET", f"/api/datasets/{GLUE_ID}/revision/{pinned['glue']}") in got
    assert ("GET", f"/datasets/{GLUE_ID}/resolve/{pinned['glue']}/sst2/validation-00000-of-00001.parquet") in got
    resolved = [path for _, path in got if "/resolve/" in path]
    for repo, sha in ((MODEL_ID, pinned["model"]), (REFERENCE_ID, pinned["reference"]), (GLUE_ID, pinned["glue"])):
        theirs = [p for p in resolved if f"/{repo}/resolve/" in p]
        assert theirs and all(f"/{repo}/resolve/{sha}/" in p for p in theirs), theirs
    assert not [r for r in requests if r[2] >= 500], requests


def test_a_wrong_revision_stops_with_one_line_naming_repo_and_revision(hub_run, hub_env, monkeypatch, tmp_path):
    """As a user runs it (papermill kernels), with a datasets cache that already holds the pinned copy."""
    from sst2bench.errors import UserError
    from sst2bench.pipeline import run_stages

    server, pinned, _ = hub_env

    def failure(workspace, run: str) -> str:
        monkeypatch.chdir(workspace)
        with pytest.raises(UserError) as raised:
            run_stages(run, echo=lambda line: None)
        message = str(raised.value)
        assert "\n" not in message and "Traceback" not in message, message
        return message

    workspace = hub_run[0]
    write_run(workspace, "badmodel", pinned, model__revision=MISSING_SHA)
    message = failure(workspace, "badmodel")
    assert "stage 'model'" in message and f"{MODEL_ID} at revision {MISSING_SHA}" in message and "model.revision" in message, message

    # datasets 5.0.1 alone would log a warning and load the cached pinned copy instead
    write_run(workspace, "baddata", pinned, data__revision=MISSING_SHA)
    message = failure(workspace, "baddata")
    assert "stage 'model'" in message and f"{GLUE_ID} (sst2) at revision {MISSING_SHA}" in message and "data.revision" in message, message

    # the reference: a copy of the finished run whose reference pin is wrong (model and quantize stay cached)
    copy = tmp_path / "workspace"
    shutil.copytree(workspace, copy)
    shutil.rmtree(copy / "models" / "distilbert" / "reference")
    params = copy / "params" / "distilbert.yaml"
    params.write_text(params.read_text().replace(pinned["reference"], MISSING_SHA))
    message = failure(copy, "distilbert")
    assert "stage 'accuracy'" in message and f"{REFERENCE_ID} at revision {MISSING_SHA}" in message and "reference.revision" in message, (
        message
    )

    for path in (
        f"/api/models/{MODEL_ID}/revision/{MISSING_SHA}",
        f"/api/datasets/{GLUE_ID}/revision/{MISSING_SHA}",
        f"/api/models/{REFERENCE_ID}/revision/{MISSING_SHA}",
    ):
        assert server.saw(path), path


def test_a_hub_model_with_swapped_labels_stops_the_run(hub_run, hub_env, monkeypatch):
    """The id2label check on the model as downloaded: 0 must be negative, 1 positive."""
    from sst2bench.errors import UserError
    from sst2bench.pipeline import run_stages

    server, pinned, _ = hub_env
    workspace = hub_run[0]
    monkeypatch.chdir(workspace)
    write_run(workspace, "swapped", pinned, model__hub_id=SWAPPED_ID, model__revision=pinned["swapped"])
    with pytest.raises(UserError, match=r"stage 'model' failed: .*id2label .* does not map 0 to negative and 1 to positive"):
        run_stages("swapped", echo=lambda line: None)
    assert server.saw(f"/{SWAPPED_ID}/resolve/{pinned['swapped']}/config.json")
