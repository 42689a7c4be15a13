"""What the stages share: the run's data, its systems, the artifact cache and skipped results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..cache import ArtifactCache, split_digest
from ..config import RunConfig
from ..errors import MissingPrerequisite
from ..paths import project_root
from ..provenance import provenance
from ..results import FP32_ORT, FP32_TORCH, REFERENCE, ModelResult, QuantizeResult, StageResult, read_result, write_result
from ..results.core import FP32_OPENVINO, FP32_ORT_FUSED
from ..systems import SystemSpec


def skipped(path: Path, schema: type[StageResult], reason: str, cfg: RunConfig) -> StageResult:
    return write_result(path, schema(status="skipped", reason=reason, provenance=provenance(cfg.to_dict())))


def load_data(cfg: RunConfig, splits=("train", "validation")):
    from ..data import load_sst2

    return load_sst2(cfg.data.source, splits=splits, revision=cfg.data.revision)


def eval_split(cfg: RunConfig, data):
    split = data[cfg.data.eval_split]
    return split.select(range(min(cfg.data.eval_limit, len(split)))) if cfg.data.eval_limit else split


def tuning_split(cfg: RunConfig, data):
    """The run's tuning split and the train rows left for fitting (a data.TuningSplit): whole train
    sentences kept apart from their phrases, or with ``data.tuning.source: validation`` the reported
    split itself (Intel's protocol) and all of train."""
    from ..data import make_tuning_split

    return make_tuning_split(data["train"], eval_split(cfg, data), cfg.data.tuning)


def crossfit_enabled(cfg: RunConfig) -> bool:
    """Whether accuracy-aware recipes are also tuned on the reported split and cross-fitted on its halves (a long study)."""
    return cfg.studies and (cfg.data.tuning.source == "validation" or cfg.data.tuning.also_on_reported)


def reported_halves(cfg: RunConfig, split) -> tuple:
    """The reported split in two seeded halves (``data.tuning.seed``), for 2-fold cross-fitting."""
    from ..data import tune_and_select

    second, first = tune_and_select(list(range(len(split))), 0.5, cfg.data.tuning.seed)
    return split.select(first), split.select(second)


def artifact_cache() -> ArtifactCache:
    """One store for every run's models and predictions: equal inputs give the same artifact."""
    return ArtifactCache(project_root() / "models" / ".cache")


def link(alias: Path, target: Path) -> Path:
    """``alias`` as a symbolic link to a cached artifact, so people find it by its readable name."""
    alias.parent.mkdir(parents=True, exist_ok=True)
    if alias.is_symlink() or alias.is_file():
        alias.unlink()
    elif alias.is_dir():
        shutil.rmtree(alias)
    alias.symlink_to(target.resolve(), target_is_directory=True)
    return alias


def model_result(cfg: RunConfig) -> ModelResult:
    return read_result(cfg.runs_dir / "model.json", ModelResult)


def fp32_specs(cfg: RunConfig) -> tuple[SystemSpec, ...]:
    """fp32 PyTorch, ONNX Runtime on the export and on the fused graph int8 recipes start from, and
    OpenVINO on the export (the runtime NNCF's int8 runs in)."""
    return (
        SystemSpec(FP32_TORCH, "torch", str(cfg.fp32_dir), "fp32"),
        SystemSpec(FP32_ORT, "onnxruntime", str(cfg.models_dir / "fp32-onnx"), "fp32"),
        SystemSpec(FP32_ORT_FUSED, "onnxruntime", str(cfg.models_dir / "fp32-onnx-fused"), "fp32"),
        SystemSpec(FP32_OPENVINO, "openvino", str(cfg.models_dir / "fp32-onnx"), "fp32"),
    )


def int8_specs(cfg: RunConfig, timed: bool = False) -> list[SystemSpec]:
    """The run's int8 systems; ``timed`` leaves out a recipe's copies tuned on other examples
    (``<recipe>@val``): their kernels and fallbacks are their recipe's, so timing them adds nothing."""
    quantized = read_result(cfg.runs_dir / "quantize.json", QuantizeResult, missing_ok=True)
    if not quantized.done:
        return []
    return [SystemSpec(name, r.backend, r.path, "int8") for name, r in quantized.recipes.items() if not (timed and r.variant_of)]


def seed_variant_specs(cfg: RunConfig) -> dict[str, SystemSpec]:
    """The static recipes calibrated with the run's other seeds: scored for their spread, never timed."""
    quantized = read_result(cfg.runs_dir / "quantize.json", QuantizeResult, missing_ok=True)
    return {name: SystemSpec(name, r.backend, r.path, "int8") for name, r in quantized.seed_variants.items()} if quantized.done else {}


def reference_spec(cfg: RunConfig) -> SystemSpec:
    """Intel's published int8 ONNX model (pinned revision); raises MissingPrerequisite offline."""
    from ..hub import fetch_snapshot, hub_reachable, is_pinned

    if cfg.reference is None:
        raise MissingPrerequisite("this run has no published reference model")
    target = cfg.models_dir / "reference"
    if not is_pinned(target, cfg.reference.hub_id, cfg.reference.revision):
        if not hub_reachable():
            raise MissingPrerequisite(f"{cfg.reference.hub_id}@{cfg.reference.revision} needs the Hugging Face Hub, which is unreachable")
        patterns = [cfg.reference.file_name, "config.json", "tokenizer*", "vocab.txt", "special_tokens_map.json"]
        fetch_snapshot(cfg.reference.hub_id, cfg.reference.revision, target, patterns, field="reference.revision")
    return SystemSpec(REFERENCE, "onnxruntime", str(target), "int8")


def all_specs(cfg: RunConfig, timed: bool = False) -> tuple[list[SystemSpec], dict[str, str]]:
    """Every local system of a run (``timed``: those the latency sweep measures), and the ones skipped with why."""
    specs, skips = list(fp32_specs(cfg)) + int8_specs(cfg, timed), {}
    try:
        specs.append(reference_spec(cfg))
    except MissingPrerequisite as reason:
        skips[REFERENCE] = str(reason)
    return specs, skips


def score(cfg: RunConfig, spec: SystemSpec, split, progress: bool = True) -> tuple[dict, Path]:
    """``spec`` scored on ``split`` under the run's inference settings (in same-length batches where
    its rows are independent: ``systems.base.scoring_protocol``), from the artifact cache when the
    model's content, the examples, the settings, the code and the CPU are all unchanged.

    Returns the accuracy report and the cached predictions file.
    """
    from dataclasses import asdict

    from ..cache import CacheKey
    from ..evaluation import score_system
    from ..systems import backend
    from ..systems.base import scoring_protocol

    inference = scoring_protocol(spec, cfg.inference)
    key = CacheKey.make(
        "predictions",
        ("sst2bench.evaluation", "sst2bench.systems.base", backend(spec.backend).__module__),
        inputs={"model": spec.path},
        params={"backend": spec.backend, "inference": asdict(inference), "examples": split_digest(split)},
        measured=True,  # int8 kernels differ by instruction set, and so can a prediction
    )

    def predict(folder: Path) -> None:
        result = score_system(spec.load(inference), split, folder / "predictions.jsonl", progress)
        (folder / "score.json").write_text(json.dumps(result))

    folder, hit = artifact_cache().get_or_make(key, predict)
    return {**json.loads((folder / "score.json").read_text()), "cache": "hit" if hit else "made"}, folder / "predictions.jsonl"
