"""Stage 50: a remote Workers-AI endpoint (Cloudflare's, or any compatible server) scored on the
evaluation split like a local system, through the reply cache; why, when it cannot run."""

from __future__ import annotations

from ..config import RunConfig
from ..errors import MissingPrerequisite
from ..provenance import provenance
from ..results import FP32_TORCH, EndpointResult, LatencyStats, SystemAccuracy, write_result
from .accuracy import compare_with_sentences
from .common import eval_split, load_data, skipped


def stage_endpoint(cfg: RunConfig, quick: bool = False, refresh: bool = False, progress: bool = True) -> EndpointResult:
    """``CLOUDFLARE_BASE_URL`` (environment or ``.env``) overrides the params' base URL (e.g. a
    local ``sst2bench serve``). A 401 or a spent daily allocation (3036) ends the stage as failed
    or partial with every reply so far kept: the next run sends only what is missing."""
    from transformers import AutoTokenizer

    from ..accuracy import load_predictions
    from ..cloudflare.client import AuthError, ClientConfig, DailyLimitReached, RequestFailed
    from ..cloudflare.credentials import setting
    from ..cloudflare.system import NAME, estimate_cost
    from ..evaluation import score_system
    from ..systems import SystemSpec

    out = cfg.runs_dir / "cloudflare.json"
    settings = cfg.cloudflare
    if not settings.enabled:
        return skipped(out, EndpointResult, "disabled in this run's params (cloudflare.enabled: false)", cfg)
    base_url = setting("CLOUDFLARE_BASE_URL") or settings.base_url
    options = {
        "base_url": base_url,
        "requests_per_minute": settings.requests_per_minute,
        "concurrency": settings.concurrency,
        "refresh": refresh,
    }
    spec = SystemSpec(NAME, "workers-ai", settings.model, "int8", latency="network", options=options)
    try:
        data, _ = load_data(cfg, splits=(cfg.data.eval_split,))
        system = spec.load(cfg.inference)  # credentials from the environment or .env
    except MissingPrerequisite as reason:
        return skipped(out, EndpointResult, str(reason), cfg)
    client, cache = system.client, system.cache
    split = eval_split(cfg, data)
    limit = cfg.quick.endpoint_examples if quick else settings.limit
    if limit:
        split = split.select(range(min(limit, len(split))))
    texts = list(split["sentence"])
    to_send = texts if refresh else [t for t in texts if cache.get(t) is None]
    tokenizer = AutoTokenizer.from_pretrained(cfg.fp32_dir) if (cfg.fp32_dir / "config.json").is_file() else None
    estimate = estimate_cost(to_send, tokenizer) if tokenizer else None
    predictions_path = cfg.runs_dir / "predictions" / f"{NAME}.jsonl"
    endpoint = "Cloudflare" if base_url == ClientConfig().base_url else f"a Workers-AI-compatible server at {base_url}"
    try:
        result = score_system(system, split, predictions_path, progress)
    except (AuthError, DailyLimitReached, RequestFailed) as error:
        return write_result(
            out,
            EndpointResult(
                status="partial" if isinstance(error, DailyLimitReached) else "failed",
                reason=f"{endpoint}: {error}",
                replies_cached=cache.count(),
                sent_this_run=system.usage.sent,
                cost_estimate=estimate,
                provenance=provenance(cfg.to_dict()),
            ),
        )
    finally:
        client.close()
    replies = [cache.get(t) for t in texts]
    baseline_path = cfg.runs_dir / "predictions" / f"{FP32_TORCH}.jsonl"
    if baseline_path.is_file():
        scored = set(split["idx"])
        baseline = [r for r in load_predictions(baseline_path) if r.idx in scored]
        result["vs_fp32"] = compare_with_sentences(baseline, load_predictions(predictions_path), split)
    return write_result(
        out,
        EndpointResult(
            endpoint=endpoint,
            model=settings.model,
            n=len(texts),
            system=SystemAccuracy(**result, family=spec.family, latency=spec.latency),
            latency_per_request=LatencyStats.from_ns([int(r.latency_ms * 1e6) for r in replies], 1),
            retries=sum(r.retries for r in replies),
            collected_from=min(r.collected_at for r in replies),
            collected_to=max(r.collected_at for r in replies),
            usage={"sent": system.usage.sent, "from_cache": system.usage.cached, "retries_this_run": system.usage.retries},
            cost_estimate=estimate,
            cost_actual=estimate_cost(list(dict.fromkeys(to_send)), tokenizer) if tokenizer else None,
            provenance=provenance(cfg.to_dict()),
        ),
    )
