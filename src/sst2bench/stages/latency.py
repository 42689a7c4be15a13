"""Stage 40: the latency protocol over every local system; speed ratios come from this one sweep."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..config import RunConfig
from ..provenance import provenance
from ..results import FP32_ORT, FP32_TORCH, LatencyResult, write_result
from .common import all_specs, eval_split, load_data, model_result, skipped


def stage_latency(cfg: RunConfig, quick: bool = False, progress: bool = True) -> LatencyResult:
    """Measurements resume where an interrupted sweep stopped; they are keyed by the models'
    content, the settings, the protocol's code and this CPU, so a changed model is measured anew."""
    from ..cache import CacheKey
    from ..latency import sample_texts, speedups, sweep
    from ..paths import size_mib
    from ..systems import backend

    out = cfg.runs_dir / "latency.json"
    model = model_result(cfg)
    if not model.done:
        return skipped(out, LatencyResult, f"no fp32 model: {model.reason}", cfg)
    settings = cfg.latency_settings(quick)
    data, _ = load_data(cfg, splits=(cfg.data.eval_split,))
    texts = sample_texts(list(eval_split(cfg, data)["sentence"]), settings.samples, settings.seed)
    specs, skips = all_specs(cfg)
    key = CacheKey.make(
        "latency",
        ("sst2bench.latency", *sorted({backend(s.backend).__module__ for s in specs})),
        inputs={s.name: s.path for s in specs},
        params={"settings": asdict(settings), "texts": texts, "specs": [asdict(s) for s in specs]},
        measured=True,
    )
    results = sweep(specs, settings, texts, cfg.runs_dir / f"latency-{key.digest[:12]}.partial.jsonl", progress)
    sizes = {s.name: size_mib(Path(s.path) / "model.onnx") if s.backend == "onnxruntime" else model.size_mib[FP32_TORCH] for s in specs}
    return write_result(
        out,
        LatencyResult(
            quick=quick,
            settings=asdict(settings),
            texts=texts,
            results=results,
            size_mib=sizes,
            speedup_vs_fp32_ort=speedups(results, FP32_ORT),
            speedup_vs_fp32_torch=speedups(results, FP32_TORCH),
            skipped=skips,
            provenance=provenance(cfg.to_dict()),
        ),
    )
