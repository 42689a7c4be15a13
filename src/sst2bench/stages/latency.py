"""Stage 40: the latency protocol over every local system, speed ratios per round, and the machine's limit."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..config import RunConfig
from ..provenance import provenance
from ..results import FP32_ORT, FP32_TORCH, LatencyResult, write_result
from .common import all_specs, eval_split, load_data, model_result, skipped


def system_sizes(specs, model) -> dict[str, float]:
    """Each system's file size: its ONNX graph, the model stage's figure, or its quantize record's."""
    from ..paths import size_mib
    from ..quantization.artifacts import load_record

    sizes = {}
    for spec in specs:
        onnx_files = sorted(Path(spec.path).glob("*.onnx")) if spec.backend in ("onnxruntime", "openvino") else []
        record = load_record(Path(spec.path)) if Path(spec.path).is_dir() else None
        if len(onnx_files) == 1:
            sizes[spec.name] = size_mib(onnx_files[0])
        elif spec.name in model.size_mib:
            sizes[spec.name] = model.size_mib[spec.name]
        elif record and record.get("size_mib") is not None:
            sizes[spec.name] = record["size_mib"]
    return sizes


def all_ratios(result: LatencyResult, baselines: list[str]) -> list:
    """Every system's speed-up over the faster baseline, at every measured setting."""
    from ..results.latency import ratio_summary

    settings = sorted({(r.threads, r.batch_size, r.padding) for r in result.results})
    systems = sorted({r.system for r in result.results})
    found = (ratio_summary(result, name, baselines, *setting) for setting in settings for name in systems)
    return [ratio for ratio in found if ratio is not None]


def median_ratios(result: LatencyResult, baseline: str) -> dict[str, float]:
    """Median per-round speed-up over one baseline at batch 1, 1 thread, dynamic padding."""
    from ..results.latency import ratio_summary

    found = {r.system: ratio_summary(result, r.system, baseline) for r in result.results}
    return {name: ratio.median for name, ratio in found.items() if ratio is not None}


def machine_limit(cfg: RunConfig, settings, specs, texts: list[str], result: LatencyResult):
    """This sweep's peaks (measured again every sweep, beside its timings) and every system's fraction of them at batch 1."""
    import numpy as np

    from ..latency import token_lengths
    from ..peak import mac_polynomials, macs_at, measure_peak, peak_fraction, weight_gemms
    from ..quantization.artifacts import load_record
    from ..results.latency import MachineLimit, PeakFraction

    graph = str(next((cfg.models_dir / "fp32-onnx").glob("*.onnx")))
    tokens = token_lengths(texts, cfg.models_dir / "fp32-onnx", settings.max_length)
    rows = int(round(float(np.mean(tokens))))
    limit = MachineLimit(**measure_peak(weight_gemms(graph), rows, list(settings.threads), settings.peak_repeats, settings.peak_large_size))
    macs = macs_at(mac_polynomials(graph), tokens)
    fractions = []
    for spec in specs:
        record = load_record(Path(spec.path)) if spec.family == "int8" and Path(spec.path).is_dir() else None
        op_table = record.get("op_table") if record else None
        for threads in settings.threads:
            measured = result.measurement(spec.name, threads)
            if measured is None or measured.forward_mean_ms is None:
                continue
            dynamic = bool(record) and record.get("recipe", {}).get("method") == "ort-dynamic"
            values = peak_fraction(
                spec.name, threads, tokens, macs, op_table, measured.forward_mean_ms, limit, "int8-dynamic" if dynamic else "int8"
            )
            if spec.family == "int8" and op_table is None:
                values["note"] = "no op table in the quantize record: every GEMM counted as fp32"
            fractions.append(PeakFraction(**values))
    return limit, fractions


def op_profiles(cfg: RunConfig, specs, texts: list[str], progress: bool = True) -> dict:
    """Each local system's forward time by kind of op (``sst2bench.profile``): batch 1, one thread,
    dynamic padding, the sample's batch-1 sentences. A backend without a profiler is left out."""
    from tqdm.auto import tqdm

    from ..profile import profile_system
    from ..results.latency import OpProfile
    from ..systems import InferenceConfig, backend

    inference = InferenceConfig(batch_size=1, threads=1, max_length=cfg.latency.max_length)
    profiles = {}
    for spec in tqdm([s for s in specs if hasattr(backend(s.backend), "op_times")], desc="profile", unit="system", disable=not progress):
        profiles[spec.name] = OpProfile(**profile_system(spec.load(inference), texts))
    return profiles


def stage_latency(cfg: RunConfig, quick: bool = False, progress: bool = True) -> LatencyResult:
    """Measurements resume where an interrupted sweep stopped; they are keyed by the models'
    content, the settings, the protocol's code and this CPU, so a changed model is measured anew."""
    from ..cache import CacheKey
    from ..latency import sample_texts, token_lengths
    from ..systems import backend

    out = cfg.runs_dir / "latency.json"
    model = model_result(cfg)
    if not model.done:
        return skipped(out, LatencyResult, f"no fp32 model: {model.reason}", cfg)
    settings = cfg.latency_settings(quick)
    data, _ = load_data(cfg, splits=(cfg.data.eval_split,))
    texts = sample_texts(list(eval_split(cfg, data)["sentence"]), settings.sample_size, settings.seed)
    lengths = token_lengths(texts, cfg.models_dir / "fp32-onnx", settings.max_length)  # the batches' sort key
    specs, skips = all_specs(cfg, timed=True)
    # Rows are keyed by round, so more rounds add to the same sweep; what only summarises them is left out.
    summary_only = ("baselines", "percentile_confidence", "percentile_tail_calls", "rounds", "profile")
    measured = {k: v for k, v in asdict(settings).items() if not k.startswith("peak") and k not in summary_only}
    key = CacheKey.make(
        "latency",
        ("sst2bench.latency", *sorted({backend(s.backend).__module__ for s in specs})),
        inputs={s.name: s.path for s in specs},
        params={"settings": measured, "texts": texts, "lengths": lengths, "specs": [asdict(s) for s in specs]},
        measured=True,
    )
    partial = cfg.runs_dir / f"latency-{key.digest[:12]}.partial.jsonl"
    result = latency_result(cfg, settings, specs, texts, partial, quick, progress, lengths=lengths)
    result.skipped = skips
    return write_result(out, result)


def latency_result(
    cfg: RunConfig,
    settings,
    specs,
    texts: list[str],
    partial_path: Path,
    quick: bool = False,
    progress: bool = True,
    lengths: list[int] | None = None,
) -> LatencyResult:
    """The sweep (resumed from ``partial_path``), summarised: measurements, ratios, sizes, the machine's limit.
    ``lengths``: the texts' token lengths (bucketed batches sort by them); read with the run's tokenizer when absent."""
    from ..latency import summarize, sweep, token_lengths

    if lengths is None:
        lengths = token_lengths(texts, cfg.models_dir / "fp32-onnx", settings.max_length)
    rows = sweep(specs, settings, texts, partial_path, progress, lengths=lengths)
    rows = [row for row in rows if row["round"] < settings.rounds]  # fewer rounds asked
    result = LatencyResult(
        quick=quick,
        settings=asdict(settings),
        texts=texts,
        token_lengths=lengths,
        results=summarize(rows, settings.percentile_confidence, settings.percentile_tail_calls),
        size_mib=system_sizes(specs, model_result(cfg)),
        provenance=provenance(cfg.to_dict()),
    )
    result.ratios = all_ratios(result, settings.baselines)
    result.speedup_vs_fp32_ort = median_ratios(result, FP32_ORT)
    result.speedup_vs_fp32_torch = median_ratios(result, FP32_TORCH)
    if settings.peak and not quick:
        result.peak, result.peak_fractions = machine_limit(cfg, settings, specs, texts[: settings.samples], result)  # batch 1's sentences
    if settings.profile and not quick:
        result.profiles = op_profiles(cfg, specs, texts[: settings.samples], progress)
    return result
