"""Stage 10: the fp32 model (the stand-in built here, a Hub model at a pinned revision, or a local
folder), its fp32 ONNX export, and the check that both agree on the whole evaluation split."""

from __future__ import annotations

from pathlib import Path

from ..cache import sha256_of
from ..config import RunConfig
from ..errors import MissingPrerequisite, UserError
from ..provenance import provenance
from ..results import FP32_ORT, FP32_TORCH, ModelResult, OnnxAgreement, write_result
from ..results.core import FP32_ORT_FUSED
from .common import artifact_cache, eval_split, fp32_specs, link, load_data, score, skipped, tuning_split

# The export must classify like PyTorch: same label everywhere, probabilities within this gap.
MAX_EXPORT_PROBABILITY_GAP = 1e-4


def export_cached(torch_dir: Path, alias: Path) -> Path:
    """The fp32 ONNX export of ``torch_dir``, made once per content of the model and the exporter."""
    from ..cache import CacheKey
    from ..export import ONNX_OPSET, export_onnx

    key = CacheKey.make("fp32-onnx", "sst2bench.export", inputs={"model": torch_dir}, params={"opset": ONNX_OPSET})

    def make(out: Path) -> None:
        export_onnx(torch_dir, out)

    folder, _ = artifact_cache().get_or_make(key, make)
    return link(alias, folder)


def fused_cached(onnx_dir: Path, alias: Path) -> Path:
    """The fp32 export after ONNX Runtime's transformer optimizer with every fusion it has, attention
    too: the very graph that int8 recipes with ``fuse_attention`` start from (made by their own
    preparation step), once per export."""
    from ..cache import CacheKey
    from ..quantization import Recipe
    from ..quantization.ort import SOURCE_FILE, prepare_source

    key = CacheKey.make(
        "fp32-onnx-fused", "sst2bench.quantization.ort", inputs={"fp32": onnx_dir}, params={"optimize_graph": True, "fuse_attention": True}
    )

    def make(out: Path) -> None:
        prepare_source(Recipe.build(FP32_ORT_FUSED, "ort-dynamic", operators=("MatMul", "Attention"), fuse_attention=True), onnx_dir, out)
        for scratch in out.glob("*.onnx"):
            if scratch.name != SOURCE_FILE:
                scratch.unlink()

    folder, _ = artifact_cache().get_or_make(key, make)
    return link(alias, folder)


def stage_model(cfg: RunConfig, progress: bool = True) -> ModelResult:
    from ..accuracy import load_predictions
    from ..data import describe_split
    from ..hub import fetch_snapshot
    from ..paths import size_mib

    out = cfg.runs_dir / "model.json"
    torch_dir = cfg.fp32_dir
    standin = None
    try:
        data, files = load_data(cfg)
        splits = tuning_split(cfg, data)
        if cfg.model.kind == "standin":
            from ..standin import build_standin

            standin = build_standin(torch_dir, splits, data["validation"], files, cfg.model.finetune, progress)
        elif cfg.model.kind == "local":
            if not (torch_dir / "config.json").is_file():
                raise UserError(f"model.path {torch_dir} is not a transformers model folder (no config.json)")
        else:
            fetch_snapshot(cfg.model.hub_id, cfg.model.revision, torch_dir)  # nothing to do when this pin is here
    except MissingPrerequisite as reason:
        return skipped(out, ModelResult, str(reason), cfg)
    onnx_dir = export_cached(torch_dir, cfg.models_dir / "fp32-onnx")
    fused_dir = fused_cached(onnx_dir, cfg.models_dir / "fp32-onnx-fused")
    split = eval_split(cfg, data)
    torch_spec, onnx_spec = fp32_specs(cfg)[:2]
    _, torch_file = score(cfg, torch_spec, split, progress)
    _, onnx_file = score(cfg, onnx_spec, split, progress)
    pairs = list(zip(load_predictions(torch_file), load_predictions(onnx_file)))
    agreement = OnnxAgreement(
        n=len(pairs),
        same_label=sum(a.label == b.label for a, b in pairs),
        max_probability_gap=max(abs(a.probabilities[1] - b.probabilities[1]) for a, b in pairs),
    )
    if agreement.same_label != agreement.n or agreement.max_probability_gap > MAX_EXPORT_PROBABILITY_GAP:
        raise UserError(
            f"the fp32 ONNX export of {torch_dir} does not classify like PyTorch on {cfg.data.eval_split}: "
            f"{agreement.n - agreement.same_label} labels differ, largest probability gap {agreement.max_probability_gap:.2e} "
            f"(allowed {MAX_EXPORT_PROBABILITY_GAP:g}); nothing downstream would be comparable"
        )
    weights = torch_dir / "model.safetensors"
    return write_result(
        out,
        ModelResult(
            fp32_dir=str(torch_dir),
            fp32_weights_sha256=sha256_of(weights) if weights.is_file() else "",
            onnx_dir=str(onnx_dir),
            fused_onnx_dir=str(fused_dir),
            size_mib={
                FP32_TORCH: size_mib(weights if weights.is_file() else torch_dir),
                FP32_ORT: size_mib(onnx_dir / "model.onnx"),
                FP32_ORT_FUSED: size_mib(fused_dir / "model.onnx"),
            },
            onnx_agreement=agreement,
            standin=standin,
            data_files=[f.__dict__ for f in files],
            tuning_split={
                "source": splits.source,
                "removed_train_rows": splits.removed_train_rows,
                "tuning": describe_split(splits.tuning),  # the tune part: every accuracy-aware trial
                "select": describe_split(splits.select) if splits.select is not None else None,  # the recommendation only
                "fit_train": describe_split(splits.train),
            },
            provenance=provenance(cfg.to_dict()),
        ),
    )
