"""Editing code re-makes exactly what depends on it: the stage keys and the artifacts inside them."""

import shutil

import pytest

from sst2bench import cache
from sst2bench.config import load_run
from sst2bench.pipeline import STAGES, stage_key
from sst2bench.stages.accuracy import stage_accuracy
from sst2bench.stages.model import stage_model
from sst2bench.stages.quantize import stage_quantize

from .conftest import REPO

RUN = """
model: {{kind: local, path: "{model}"}}
data: {{eval_limit: 24, tuning: {{size: 40}}}}
quantize:
  recipes: [ort-dynamic, ort-static-qdq]
  overrides: {{ort-static-qdq: {{calibration_samples: 8, calibration_max_length: 16}}}}
inference: {{batch_size: 1, threads: 1}}
cloudflare: {{enabled: false}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory, signal_model, sst2_dir):
    """A project with one run, and a copy of the package's source that the cache reads code from.
    One for the module, whose tests run in file order: each edits a file of that copy after the
    sweep before it, so the next starts from a warm cache instead of quantizing and scoring again."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "params" / "published", root / "params" / "published")
    (root / "params" / "cached.yaml").write_text(RUN.format(model=signal_model.torch_dir))
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    package = root / "source" / "sst2bench"
    shutil.copytree(cache.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache, "PACKAGE_DIR", package)
        patch.chdir(root)
        patch.setenv("SST2_DATA_DIR", str(sst2_dir))
        yield root, package


def sweep(cfg):
    """Model, quantize and accuracy stages; which int8 models and predictions came from the cache."""
    stage_model(cfg, progress=False)
    quantized = stage_quantize(cfg, progress=False)
    scored = stage_accuracy(cfg, progress=False)
    return {n: r.cache for n, r in quantized.recipes.items()}, {n: r.cache for n, r in scored.systems.items()}


def edit(path):
    path.write_text(path.read_text() + "\n# one more line\n")


def stage_keys(cfg, root):
    return {stage.name: stage_key(stage, cfg, root) for stage in STAGES}


def test_editing_the_report_remakes_nothing_but_the_report(project):
    root, package = project
    cfg = load_run("cached")
    # fp32's predictions were made once, by the model stage's export check, and reused here.
    made = {
        "fp32-torch": "hit",
        "fp32-ort": "hit",
        "fp32-ort-fused": "made",
        "fp32-openvino": "made",
        "ort-dynamic": "made",
        "ort-static-qdq": "made",
    }
    assert sweep(cfg) == ({"ort-dynamic": "made", "ort-static-qdq": "made"}, made)
    before = stage_keys(cfg, root)

    edit(package / "report.py")
    assert sweep(cfg) == (
        {"ort-dynamic": "hit", "ort-static-qdq": "hit"},
        dict.fromkeys(["fp32-torch", "fp32-ort", "fp32-ort-fused", "fp32-openvino", "ort-dynamic", "ort-static-qdq"], "hit"),
    )
    after = stage_keys(cfg, root)
    assert {name for name in before if before[name] != after[name]} == {"report"}


def test_editing_a_quantizer_requantizes_its_recipes_and_rescoring_follows_the_models_content(project):
    root, package = project
    cfg = load_run("cached")
    sweep(cfg)
    before = stage_keys(cfg, root)

    edit(package / "quantization" / "ort_static.py")
    quantized, scored = sweep(cfg)
    assert quantized == {"ort-dynamic": "hit", "ort-static-qdq": "made"}
    # A comment changes no byte of the model it makes, so nothing needs scoring again.
    assert set(scored.values()) == {"hit"}, scored
    after = stage_keys(cfg, root)
    assert {"quantize", "accuracy", "latency"} <= {name for name in before if before[name] != after[name]}

    # A change that does alter one model (its calibration) re-scores that model and only it.
    (root / "params" / "cached.yaml").write_text(
        (root / "params" / "cached.yaml").read_text().replace("calibration_samples: 8", "calibration_samples: 12")
    )
    quantized, scored = sweep(load_run("cached"))
    assert quantized == {"ort-dynamic": "hit", "ort-static-qdq": "made"}
    assert scored == {
        "fp32-torch": "hit",
        "fp32-ort": "hit",
        "fp32-ort-fused": "hit",
        "fp32-openvino": "hit",
        "ort-dynamic": "hit",
        "ort-static-qdq": "made",
    }
