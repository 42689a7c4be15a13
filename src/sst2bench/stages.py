"""The pipeline's stages as plain functions: each reads params and earlier JSON, writes its own JSON.

Notebooks call these (and only draw and explain), the CLI calls the same functions, and a stage
whose prerequisite is missing writes ``{"status": "skipped", "reason": ...}`` instead of failing,
so the report can say why.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig
from .errors import MissingPrerequisite, UserError
from .paths import project_root
from .provenance import provenance

FP32_TORCH = "fp32-torch"
FP32_ORT = "fp32-ort"
REFERENCE = "intel-int8-published"


def write_json(path: Path, payload: dict) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))
    return payload


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path} is missing: run the stage that writes it first")
    return json.loads(path.read_text())


def skipped(path: Path, reason: str, cfg: RunConfig) -> dict:
    return write_json(path, {"status": "skipped", "reason": reason, "provenance": provenance(cfg.to_dict())})


def load_data(cfg: RunConfig, splits=("train", "validation")):
    from .data import load_sst2

    data, files = load_sst2(cfg.data.source, splits=splits, revision=cfg.data.revision)
    return data, files


def eval_split(cfg: RunConfig, data):
    split = data[cfg.data.eval_split]
    return split.select(range(min(cfg.data.eval_limit, len(split)))) if cfg.data.eval_limit else split


@dataclass(frozen=True)
class SystemSpec:
    """How to load a compared system, so another process (the latency protocol) can load it too."""

    name: str
    kind: str  # "torch" | "onnx"
    path: str
    family: str  # "fp32" | "int8"

    def load(self, inference):
        from .systems import OrtSystem, TorchSystem

        if self.kind == "torch":
            return TorchSystem.from_pretrained(self.path, inference, name=self.name)
        return OrtSystem(self.path, inference, name=self.name)


# ---------------------------------------------------------------- model


def fetch_hub_model(hub_id: str, revision: str, out_dir: Path, allow_patterns=None, field: str = "model.revision") -> Path:
    """Download a pinned Hub snapshot into ``out_dir`` (fails fast offline).

    A repository or revision the Hub does not have stops with one line naming both (a UserError),
    and ``field`` says which params entry to fix.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    from .hub import download_error, endpoint, require_hub

    require_hub(f"model {hub_id}@{revision}")
    try:
        snapshot_download(hub_id, revision=revision, local_dir=out_dir, allow_patterns=allow_patterns, endpoint=endpoint())
    except HfHubHTTPError as error:  # so are RevisionNotFoundError, RepositoryNotFoundError, LocalEntryNotFoundError
        raise download_error("model", hub_id, revision, error, field) from error
    return out_dir


def stage_model(cfg: RunConfig, progress: bool = True) -> dict:
    """The fp32 model (stand-in built here, or the Hub's) and its fp32 ONNX export, checked to agree."""
    from .export import export_onnx
    from .evaluation import predict_all
    from .quantization.artifacts import size_mib

    out = cfg.runs_dir / "model.json"
    torch_dir, onnx_dir = cfg.fp32_dir, cfg.models_dir / "fp32-onnx"
    standin = None
    try:
        data, files = load_data(cfg)
        if cfg.model.kind == "standin":
            from .standin import build_standin

            standin = build_standin(torch_dir, data, files, cfg.model.finetune, progress)
        elif cfg.model.kind == "local":
            if not (torch_dir / "config.json").is_file():
                raise UserError(f"model.path {torch_dir} is not a transformers model folder (no config.json)")
        elif not (torch_dir / "config.json").is_file():
            fetch_hub_model(cfg.model.hub_id, cfg.model.revision, torch_dir)
    except MissingPrerequisite as reason:
        return skipped(out, str(reason), cfg)
    if not (onnx_dir / "model.onnx").is_file() or (onnx_dir / "model.onnx").stat().st_mtime < (torch_dir / "config.json").stat().st_mtime:
        shutil.rmtree(onnx_dir, ignore_errors=True)
        export_onnx(torch_dir, onnx_dir)
    split = eval_split(cfg, data)
    texts = list(split["sentence"])
    torch_spec, onnx_spec = fp32_specs(cfg)
    torch_pred = predict_all(torch_spec.load(cfg.inference), texts, progress, desc="fp32 torch")
    onnx_pred = predict_all(onnx_spec.load(cfg.inference), texts, progress, desc="fp32 onnx")
    agree = sum(a.label == b.label for a, b in zip(torch_pred, onnx_pred))
    max_gap = max(abs(a.probabilities[1] - b.probabilities[1]) for a, b in zip(torch_pred, onnx_pred))
    return write_json(
        out,
        {
            "status": "done",
            "fp32_dir": str(torch_dir),
            "onnx_dir": str(onnx_dir),
            "size_mib": {FP32_TORCH: size_mib(torch_dir / "model.safetensors") if (torch_dir / "model.safetensors").is_file() else size_mib(torch_dir), FP32_ORT: size_mib(onnx_dir / "model.onnx")},
            "onnx_agreement": {"n": len(texts), "same_label": agree, "max_probability_gap": max_gap},
            "standin": standin,
            "data_files": [f.__dict__ for f in files],
            "provenance": provenance(cfg.to_dict()),
        },
    )


def fp32_specs(cfg: RunConfig) -> tuple[SystemSpec, SystemSpec]:
    return (
        SystemSpec(FP32_TORCH, "torch", str(cfg.fp32_dir), "fp32"),
        SystemSpec(FP32_ORT, "onnx", str(cfg.models_dir / "fp32-onnx"), "fp32"),
    )


# ---------------------------------------------------------------- quantize


def stage_quantize(cfg: RunConfig, recipes=None, progress: bool = True) -> dict:
    """Apply every recipe (reusing a model whose recipe and fp32 source are unchanged)."""
    from tqdm.auto import tqdm

    from .quantization.artifacts import identical_recipes, load_record, qparams_digest
    from .quantization.run import quantize

    out = cfg.runs_dir / "quantize.json"
    model = read_json(cfg.runs_dir / "model.json")
    if model["status"] != "done":
        return skipped(out, f"no fp32 model: {model['reason']}", cfg)
    data, _ = load_data(cfg)
    tuning = eval_split(cfg, data)
    fp32_onnx = Path(model["onnx_dir"]) / "model.onnx"
    records = {}
    chosen = recipes or cfg.quantize.recipe_objects()
    bar = tqdm(chosen, desc="quantize", unit="recipe", disable=not progress)
    for recipe in bar:
        bar.set_postfix_str(recipe.name)
        target = cfg.models_dir / "int8" / recipe.name
        record = load_record(target)
        fresh = record and record["recipe"] == json.loads(json.dumps(recipe.to_dict())) and record.get("fp32_mtime") == fp32_onnx.stat().st_mtime
        if not fresh:
            record = quantize(recipe, fp32_onnx.parent, target, data["train"], tuning, cfg.quantize.threads)
            record["fp32_mtime"] = fp32_onnx.stat().st_mtime
            write_json(target / "quantization.json", record)
        if not record.get("qparams_digest"):  # a model quantized before digests were recorded
            record["qparams_digest"] = qparams_digest(target / "model.onnx")
            write_json(target / "quantization.json", record)
        records[recipe.name] = {"path": str(target), **{k: v for k, v in record.items() if k not in ("op_table", "provenance")}}
    previous = json.loads(out.read_text())["recipes"] if out.is_file() and recipes else {}
    merged = {**previous, **records}
    # Differently named recipes with equal scales and zero points: the options that tell them
    # apart changed nothing the quantizer decides (as entropy with 128/128 bins, which is minmax).
    identical = identical_recipes(merged)
    for group in identical:
        print(f"warning: recipes {', '.join(group)} have identical quantization parameters (scales and zero points): the options that differ between them did not act")
    return write_json(out, {"status": "done", "recipes": merged, "identical_qparams": identical, "provenance": provenance(cfg.to_dict())})


def int8_specs(cfg: RunConfig) -> list[SystemSpec]:
    path = cfg.runs_dir / "quantize.json"
    if not path.is_file() or read_json(path)["status"] != "done":
        return []
    return [SystemSpec(name, "onnx", r["path"], "int8") for name, r in read_json(path)["recipes"].items()]


def reference_spec(cfg: RunConfig) -> SystemSpec:
    """Intel's published int8 ONNX model (pinned revision); raises MissingPrerequisite offline."""
    from .hub import hub_reachable

    if cfg.reference is None:
        raise MissingPrerequisite("this run has no published reference model")
    target = cfg.models_dir / "reference"
    if not (target / cfg.reference.file_name).is_file():
        if not hub_reachable():
            raise MissingPrerequisite(f"{cfg.reference.hub_id}@{cfg.reference.revision} needs the Hugging Face Hub, which is unreachable")
        patterns = [cfg.reference.file_name, "config.json", "tokenizer*", "vocab.txt", "special_tokens_map.json"]
        fetch_hub_model(cfg.reference.hub_id, cfg.reference.revision, target, patterns, field="reference.revision")
    return SystemSpec(REFERENCE, "onnx", str(target), "int8")


def all_specs(cfg: RunConfig) -> tuple[list[SystemSpec], dict[str, str]]:
    """Every local system of a run, and the ones skipped with why."""
    specs, skips = list(fp32_specs(cfg)) + int8_specs(cfg), {}
    try:
        specs.append(reference_spec(cfg))
    except MissingPrerequisite as reason:
        skips[REFERENCE] = str(reason)
    return specs, skips


# ---------------------------------------------------------------- accuracy


def compare_with_sentences(baseline, candidate, split) -> dict:
    """``accuracy.compare`` with each disagreement's sentence, for the report."""
    from .accuracy import compare

    result = compare(baseline, candidate)
    sentences = dict(zip(split["idx"], split["sentence"]))
    for row in result["disagreements"]:
        row["sentence"] = sentences[row["idx"]]
    return result


def stage_accuracy(cfg: RunConfig, progress: bool = True) -> dict:
    """Accuracy of every system on the eval split, each compared pairwise with fp32 PyTorch."""
    from .accuracy import load_predictions
    from .evaluation import score_system

    out = cfg.runs_dir / "accuracy.json"
    model = read_json(cfg.runs_dir / "model.json")
    if model["status"] != "done":
        return skipped(out, f"no fp32 model: {model['reason']}", cfg)
    data, _ = load_data(cfg, splits=(cfg.data.eval_split,))
    split = eval_split(cfg, data)
    specs, skips = all_specs(cfg)
    predictions_dir = cfg.runs_dir / "predictions"
    systems = {}
    for spec in specs:
        result = score_system(spec.load(cfg.inference), split, predictions_dir / f"{spec.name}.jsonl", progress)
        systems[spec.name] = {**result, "family": spec.family, "path": spec.path}
    baseline = load_predictions(predictions_dir / f"{FP32_TORCH}.jsonl")
    for name, result in systems.items():
        if name != FP32_TORCH:
            result["vs_fp32"] = compare_with_sentences(baseline, load_predictions(predictions_dir / f"{name}.jsonl"), split)
    return write_json(
        out,
        {"status": "done", "split": cfg.data.eval_split, "n": len(split), "systems": systems, "skipped": skips, "provenance": provenance(cfg.to_dict())},
    )


def recipe_table(cfg: RunConfig) -> list[dict]:
    """One row per system: accuracy (count and %), change vs fp32, size; for the sweep and report."""
    accuracy = read_json(cfg.runs_dir / "accuracy.json")
    quantized = read_json(cfg.runs_dir / "quantize.json").get("recipes", {}) if (cfg.runs_dir / "quantize.json").is_file() else {}
    model = read_json(cfg.runs_dir / "model.json")
    rows = []
    for name, result in accuracy.get("systems", {}).items():
        vs = result.get("vs_fp32", {})
        rows.append(
            {
                "system": name,
                "family": result["family"],
                "correct": result["correct"],
                "n": result["n"],
                "accuracy_pct": 100 * result["accuracy"],
                "ci95_pct": [100 * x for x in result["accuracy_ci95"]],
                "change_examples": vs.get("difference_examples", 0),
                "relative_change_pct": 100 * vs.get("relative_change", 0.0),
                "mcnemar_p": vs.get("mcnemar_exact_p"),
                "size_mib": quantized.get(name, {}).get("size_mib") or model.get("size_mib", {}).get(name),
            }
        )
    return rows


def format_recipe_table(rows: list[dict]) -> str:
    header = f"{'system':<28} {'correct/n':>10} {'accuracy':>9} {'vs fp32':>8} {'rel.':>7} {'McNemar p':>10} {'size MiB':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        p = "" if r["mcnemar_p"] is None else f"{r['mcnemar_p']:.3f}"
        size = "" if r["size_mib"] is None else f"{r['size_mib']:.1f}"
        lines.append(
            f"{r['system']:<28} {r['correct']:>5}/{r['n']:<4} {r['accuracy_pct']:>8.2f}% {r['change_examples']:>+8d} "
            f"{r['relative_change_pct']:>+6.2f}% {p:>10} {size:>9}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- cloudflare


QUICK_CLOUDFLARE_EXAMPLES = 20


def stage_cloudflare(cfg: RunConfig, quick: bool = False, refresh: bool = False, progress: bool = True) -> dict:
    """The endpoint on the eval split through the reply cache; records why when it cannot run.

    ``CLOUDFLARE_BASE_URL`` (environment or ``.env``) overrides the params' base URL (e.g. a local
    ``sst2bench serve``).
    """
    from transformers import AutoTokenizer

    from .accuracy import load_predictions
    from .cloudflare.cache import ReplyCache
    from .cloudflare.client import AuthError, ClientConfig, DailyLimitReached, RequestFailed, WorkersAIClient
    from .cloudflare.credentials import Credentials, setting
    from .cloudflare.system import NAME, CloudflareSystem, estimate_cost
    from .evaluation import score_system
    from .latency import LatencyStats

    out = cfg.runs_dir / "cloudflare.json"
    settings = cfg.cloudflare
    if not settings.enabled:
        return skipped(out, "disabled in this run's params (cloudflare.enabled: false)", cfg)
    try:
        credentials = Credentials.load()
        data, _ = load_data(cfg, splits=(cfg.data.eval_split,))
    except MissingPrerequisite as reason:
        return skipped(out, str(reason), cfg)
    split = eval_split(cfg, data)
    limit = QUICK_CLOUDFLARE_EXAMPLES if quick else settings.limit
    if limit:
        split = split.select(range(min(limit, len(split))))
    base_url = setting("CLOUDFLARE_BASE_URL") or settings.base_url
    cache = ReplyCache(project_root() / "data" / "interim" / "cloudflare-replies.sqlite", base_url, settings.model)
    texts = list(split["sentence"])
    to_send = texts if refresh else [t for t in texts if cache.get(t) is None]
    tokenizer = AutoTokenizer.from_pretrained(cfg.fp32_dir) if (cfg.fp32_dir / "config.json").is_file() else None
    estimate = estimate_cost(to_send, tokenizer) if tokenizer else None
    client = WorkersAIClient(credentials, ClientConfig(base_url=base_url, model=settings.model, requests_per_minute=settings.requests_per_minute, concurrency=settings.concurrency))
    system = CloudflareSystem(client, cache, refresh=refresh)
    predictions_path = cfg.runs_dir / "predictions" / f"{NAME}.jsonl"
    endpoint = "Cloudflare" if base_url == ClientConfig().base_url else f"a Workers-AI-compatible server at {base_url}"
    try:
        result = score_system(system, split, predictions_path, progress)
    except (AuthError, DailyLimitReached, RequestFailed) as error:
        payload = {
            "status": "partial" if isinstance(error, DailyLimitReached) else "failed",
            "reason": f"{endpoint}: {error}",
            "replies_cached": cache.count(),
            "sent_this_run": system.usage.sent,
            "cost_estimate": estimate,
            "provenance": provenance(cfg.to_dict()),
        }
        return write_json(out, payload)
    finally:
        client.close()
    replies = [cache.get(t) for t in texts]
    baseline_path = cfg.runs_dir / "predictions" / f"{FP32_TORCH}.jsonl"
    if baseline_path.is_file():
        baseline = [r for r in load_predictions(baseline_path) if r.idx in set(split["idx"])]
        result["vs_fp32"] = compare_with_sentences(baseline, load_predictions(predictions_path), split)
    payload = {
        "status": "done",
        "endpoint": endpoint,
        "model": settings.model,
        "n": len(texts),
        "system": {**result, "family": "int8"},
        "latency_per_request": LatencyStats.from_ns([int(r.latency_ms * 1e6) for r in replies], 1).to_dict(),
        "retries": sum(r.retries for r in replies),
        "collected_from": min(r.collected_at for r in replies),
        "collected_to": max(r.collected_at for r in replies),
        "usage": {"sent": system.usage.sent, "from_cache": system.usage.cached, "retries_this_run": system.usage.retries},
        "cost_estimate": estimate,
        "cost_actual": estimate_cost(list(dict.fromkeys(to_send)), tokenizer) if tokenizer else None,
        "provenance": provenance(cfg.to_dict()),
    }
    return write_json(out, payload)


# ---------------------------------------------------------------- latency

QUICK_LATENCY = {"batch_sizes": [1], "paddings": ["dynamic"], "threads": [1], "samples": 16, "warmup": 2, "iterations": 10, "duration_s": 2.0}


def stage_latency(cfg: RunConfig, quick: bool = False, progress: bool = True) -> dict:
    """The latency protocol over every local system; speed ratios come from this one sweep."""
    import dataclasses
    import hashlib

    from .latency import sample_texts, speedups, sweep
    from .quantization.artifacts import size_mib

    out = cfg.runs_dir / "latency.json"
    model = read_json(cfg.runs_dir / "model.json")
    if model["status"] != "done":
        return skipped(out, f"no fp32 model: {model['reason']}", cfg)
    settings = dataclasses.replace(cfg.latency, **QUICK_LATENCY) if quick else cfg.latency
    data, _ = load_data(cfg, splits=(cfg.data.eval_split,))
    texts = sample_texts(list(eval_split(cfg, data)["sentence"]), settings.samples, settings.seed)
    specs, skips = all_specs(cfg)
    key = hashlib.sha256(json.dumps([dataclasses.asdict(settings), [dataclasses.asdict(s) for s in specs]], sort_keys=True).encode()).hexdigest()[:12]
    results = sweep(specs, settings, texts, cfg.runs_dir / f"latency-{key}.partial.jsonl", progress)
    sizes = {s.name: size_mib(Path(s.path) / "model.onnx") if s.kind == "onnx" else model["size_mib"][FP32_TORCH] for s in specs}
    return write_json(
        out,
        {
            "status": "done",
            "quick": quick,
            "settings": dataclasses.asdict(settings),
            "texts": texts,
            "results": results,
            "size_mib": sizes,
            "speedup_vs_fp32_ort": speedups(results, FP32_ORT),
            "speedup_vs_fp32_torch": speedups(results, FP32_TORCH),
            "skipped": skips,
            "provenance": provenance(cfg.to_dict()),
        },
    )


def format_latency_table(results: list[dict]) -> str:
    header = f"{'system':<28} {'thr':>3} {'batch':>5} {'padding':<10} {'p50 ms':>8} {'p99 ms':>8} {'samples/s':>10} {'peak RSS MiB':>12}"
    lines = [header, "-" * len(header)]
    for r in sorted(results, key=lambda r: (r["threads"], r["padding"], r["batch_size"], r["p50_ms"])):
        lines.append(
            f"{r['system']:<28} {r['threads']:>3} {r['batch_size']:>5} {r['padding']:<10} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['samples_per_second']:>10.1f} {r['peak_rss_mib']:>12.0f}"
        )
    return "\n".join(lines)
