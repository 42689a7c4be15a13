"""``sst2bench export``: a tiny run's int8 model as a folder that serve, the official SDK, ONNX
Runtime and optimum open as it is."""

import hashlib
import json
import threading

import pytest

from sst2bench.cli import main

from .test_cloudflare import ACCOUNT, MODEL, TOKEN

TINY_RUN = """
model: {{kind: local, path: "{model}"}}
data: {{eval_limit: 20, tuning: {{size: 20, length_bins: 1}}}}
quantize: {{recipes: [ort-dynamic]}}
inference: {{batch_size: 1, threads: 1}}
cloudflare: {{enabled: false}}
"""


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, sst2_dir, tmp_path_factory):
    """A project with one run whose model, quantize and accuracy stages have run (no latency)."""
    from sst2bench.config import load_run
    from sst2bench.stages.accuracy import stage_accuracy
    from sst2bench.stages.model import stage_model
    from sst2bench.stages.quantize import stage_quantize

    root = tmp_path_factory.mktemp("project")
    (root / "params").mkdir()
    (root / "params" / "tiny.yaml").write_text(TINY_RUN.format(model=tiny_model_dir))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("SST2_DATA_DIR", str(sst2_dir))
        cfg = load_run("tiny")
        stage_model(cfg, progress=False)
        stage_quantize(cfg, progress=False)
        stage_accuracy(cfg, progress=False)
    return root


@pytest.fixture
def exported(tiny_run, monkeypatch, capsys):
    monkeypatch.chdir(tiny_run)
    out = tiny_run / "ship"
    assert main(["export", "--run", "tiny", "--system", "ort-dynamic", "--output", str(out)]) == 0, capsys.readouterr().err
    yield out
    import shutil

    shutil.rmtree(out)


def test_manifest_names_recipe_hashes_counts_cpu_and_versions(exported, tiny_run):
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["system"] == "ort-dynamic" and manifest["recipe"]["method"] == "ort-dynamic"
    assert {"model.onnx", "config.json", "tokenizer.json"} <= set(manifest["files"])
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((exported / name).read_bytes()).hexdigest() == digest, name
    accuracy = json.loads((tiny_run / "runs" / "tiny" / "accuracy.json").read_text())["systems"]["ort-dynamic"]
    assert manifest["accuracy"]["validation"] == {"correct": accuracy["correct"], "n": 20}
    assert manifest["accuracy"]["tuning-select"]["n"] == 10  # the tuning split's select half (params data.tuning), counted apart
    assert "final" not in manifest["accuracy"]  # this run names no final split
    assert manifest["cpu"]["model"] and "int8 kernel class" in manifest["int8_instructions"]
    assert manifest["versions"]["onnxruntime"] and manifest["latency"] == {}  # this run has no latency stage
    assert not manifest["recommended"] and "No recommendation" in manifest["recommendation"]


def test_onnxruntime_and_optimum_open_it_and_agree_with_the_run(exported):
    import numpy as np
    import onnxruntime
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer

    from sst2bench.systems import InferenceConfig, load_system

    tokenizer = AutoTokenizer.from_pretrained(exported)
    inputs = tokenizer(["good film ."], return_tensors="np")
    session = onnxruntime.InferenceSession(str(exported / "model.onnx"))
    names = {i.name for i in session.get_inputs()}
    logits = session.run(None, {k: v for k, v in inputs.items() if k in names})[0]
    optimum_logits = ORTModelForSequenceClassification.from_pretrained(exported)(**tokenizer(["good film ."], return_tensors="pt")).logits
    ours = load_system(str(exported), InferenceConfig(batch_size=1, threads=1)).predict(["good film ."])[0]
    assert np.allclose(logits, optimum_logits.detach().numpy(), atol=1e-5)
    probabilities = np.exp(logits[0]) / np.exp(logits[0]).sum()
    assert np.allclose(probabilities, ours.probabilities, atol=1e-5)


def test_serve_answers_the_official_sdk_from_the_exported_folder(exported):
    from cloudflare import Cloudflare

    from sst2bench.cloudflare.serve import make_server
    from sst2bench.systems import InferenceConfig, load_system

    system = load_system(str(exported), InferenceConfig(batch_size=1, threads=1))  # as `sst2bench serve --model DIR` loads it
    server = make_server(system, TOKEN, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sdk = Cloudflare(api_token=TOKEN, base_url=f"http://127.0.0.1:{server.server_address[1]}/client/v4", max_retries=0)
        result = sdk.ai.run(MODEL, account_id=ACCOUNT, text="a dull , boring mess")
        scores = {
            item["label"] if isinstance(item, dict) else item.label: item["score"] if isinstance(item, dict) else item.score
            for item in result
        }
        assert scores["POSITIVE"] == pytest.approx(system.predict(["a dull , boring mess"])[0].probabilities[1])
    finally:
        server.shutdown()
        server.server_close()


def test_default_is_the_recommendation_and_mistakes_are_one_line(tiny_run, monkeypatch, capsys):
    monkeypatch.chdir(tiny_run)
    assert main(["export", "--run", "tiny"]) == 2  # no latency stage: nothing to recommend
    assert "no recommendation" in capsys.readouterr().err
    assert main(["export", "--run", "tiny", "--system", "nope"]) == 2
    assert "choose one of: fp32-torch, fp32-ort" in capsys.readouterr().err
    taken = tiny_run / "taken"
    (taken / "x").mkdir(parents=True)
    assert main(["export", "--run", "tiny", "--system", "ort-dynamic", "--output", str(taken)]) == 2
    assert "not empty" in capsys.readouterr().err and not (taken / "model.onnx").exists()
