"""Typed, versioned results: what each stage writes and what the report and the gate read.

Every stage result is a pydantic model with a ``schema_version``; stages write them and readers
load them only through :func:`write_result` and :func:`read_result`, so a renamed field fails
loudly at load instead of turning into a silent ``KeyError`` (or a ``NaN``) in a report. The
names that more than one module needs (system names, stage files) live here once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import UserError

SCHEMA_VERSION = 2
FP32_TORCH = "fp32-torch"
FP32_ORT = "fp32-ort"
REFERENCE = "intel-int8-published"
Status = Literal["done", "skipped", "failed", "partial"]
# A stage that stopped part-way is run again next time, never taken from the cache.
UNFINISHED = ("failed", "partial")


class Schema(BaseModel):
    """Unknown keys are errors, as in params: a typo never becomes a silent default."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class StageResult(Schema):
    """What every stage writes: its status (with the reason when not done) and provenance."""

    schema_version: int = SCHEMA_VERSION
    status: Status = "done"
    reason: str = ""
    provenance: dict = {}

    @property
    def done(self) -> bool:
        return self.status == "done"


class OnnxAgreement(Schema):
    n: int
    same_label: int
    max_probability_gap: float


class ModelResult(StageResult):
    fp32_dir: str = ""
    onnx_dir: str = ""
    size_mib: dict[str, float] = {}
    onnx_agreement: OnnxAgreement | None = None
    standin: dict | None = None
    data_files: list[dict] = []


class RecipeResult(Schema):
    """One int8 model: its recipe, which ops run in int8, size, time and INC's trials."""

    path: str
    recipe: dict
    source_graph: str
    ops: dict[str, dict[str, int]]
    fp32_fallback: list[dict]
    size_mib: float
    fp32_size_mib: float
    quantization_seconds: float
    tuning: dict | None = None
    qparams_digest: str | None = None
    cache: str = ""


class QuantizeResult(StageResult):
    recipes: dict[str, RecipeResult] = {}
    # Groups of differently named recipes whose quantization parameters are all equal.
    identical_qparams: list[list[str]] = []

    def table(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "recipe": name,
                    "int8 ops": sum(c["int8"] for c in r.ops.values()),
                    "fp32 fallback": len(r.fp32_fallback),
                    "size MiB": r.size_mib,
                    "seconds": r.quantization_seconds,
                    "cache": r.cache,
                }
                for name, r in self.recipes.items()
            ]
        )


class Disagreement(Schema):
    idx: int
    gold: int
    baseline_label: int
    baseline_score: float
    candidate_label: int
    candidate_score: float
    sentence: str = ""


class Comparison(Schema):
    """A system paired with fp32 PyTorch on the same examples."""

    n: int
    baseline_correct: int
    candidate_correct: int
    difference_examples: int
    difference: float
    difference_ci95: list[float]
    relative_change: float
    only_baseline_correct: int
    only_candidate_correct: int
    mcnemar_exact_p: float
    agreement: float
    disagreements: list[Disagreement]


class SystemAccuracy(Schema):
    system: str
    family: str
    n: int
    correct: int
    accuracy: float
    accuracy_pct: float
    accuracy_ci95: list[float]
    macro_f1: float
    precision: float
    recall: float
    confusion_matrix: list[list[int]]
    confusion_matrix_axes: str
    seconds: float
    predictions: str
    path: str = ""
    # Where its latency comes from: "call" (a call in a local process) or "network" (a round-trip).
    latency: str = "call"
    # "hit" when the predictions came from the artifact cache, "made" when the system ran now.
    cache: str = ""
    vs_fp32: Comparison | None = None


class EvalSetResult(Schema):
    """Every system on one more labelled set, each paired with fp32 PyTorch there."""

    source: str
    status: Status = "done"
    reason: str = ""
    n: int = 0
    systems: dict[str, SystemAccuracy] = {}


class AccuracyResult(StageResult):
    split: str = ""
    n: int = 0
    systems: dict[str, SystemAccuracy] = {}
    skipped: dict[str, str] = {}
    # The run's other evaluation sets (params ``evaluation_sets``), by name.
    sets: dict[str, EvalSetResult] = {}


class LatencyStats(Schema):
    """Summary of per-call latencies, as optimum-benchmark reports them."""

    count: int
    mean_ms: float
    stdev_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    samples_per_second: float

    @classmethod
    def from_ns(cls, durations_ns: list[int], batch_size: int) -> LatencyStats:
        import numpy as np

        if not durations_ns:
            raise ValueError("no timed calls")
        ms = np.asarray(durations_ns, dtype=np.float64) / 1e6
        p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
        return cls(
            count=len(ms),
            mean_ms=float(ms.mean()),
            stdev_ms=float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
            p50_ms=float(p50),
            p90_ms=float(p90),
            p95_ms=float(p95),
            p99_ms=float(p99),
            samples_per_second=float(batch_size * 1000 / ms.mean()),
        )


class LatencyMeasurement(LatencyStats):
    """One system at one (threads, batch, padding) setting, measured in its own worker process."""

    model_config = ConfigDict(extra="allow")  # workers add their own diagnostics (thread settings)

    system: str
    family: str
    threads: int
    batch_size: int
    padding: str
    durations_ms: list[float]
    load_seconds: float
    rss_after_load_mib: float
    peak_rss_mib: float


class LatencyResult(StageResult):
    quick: bool = False
    settings: dict = {}
    texts: list[str] = []
    results: list[LatencyMeasurement] = []
    size_mib: dict[str, float] = {}
    speedup_vs_fp32_ort: dict[str, float] = {}
    speedup_vs_fp32_torch: dict[str, float] = {}
    skipped: dict[str, str] = {}

    def table(self):
        """One row per system and setting, fastest first within a setting."""
        import pandas as pd

        columns = ["system", "threads", "batch_size", "padding", "count", "p50_ms", "p99_ms", "samples_per_second", "peak_rss_mib"]
        rows = [r.model_dump(include=set(columns)) for r in self.results]
        return pd.DataFrame(rows, columns=columns).sort_values(["threads", "padding", "batch_size", "p50_ms"], ignore_index=True)


class EndpointResult(StageResult):
    """A remote endpoint scored like a local system; its latency is a network round-trip."""

    endpoint: str = ""
    model: str = ""
    n: int = 0
    system: SystemAccuracy | None = None
    latency_per_request: LatencyStats | None = None
    retries: int = 0
    collected_from: float | None = None
    collected_to: float | None = None
    usage: dict[str, int] = {}
    replies_cached: int = 0
    sent_this_run: int = 0
    cost_estimate: dict | None = None
    cost_actual: dict | None = None


ResultT = TypeVar("ResultT", bound=StageResult)


def write_result(path: Path | str, result: StageResult) -> StageResult:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.model_dump_json(indent=2))
    return result


def read_result(path: Path | str, schema: type[ResultT], missing_ok: bool = False) -> ResultT:
    """A stage's result, validated; with ``missing_ok`` an absent file reads as not run."""
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return schema(status="skipped", reason=f"{path.name} missing: the stage has not run")
        raise UserError(f"{path} is missing: run the stage that writes it first")
    values = json.loads(path.read_text())
    if values.get("schema_version") != SCHEMA_VERSION:
        raise UserError(
            f"{path} has schema {values.get('schema_version')}, this version reads {SCHEMA_VERSION}: rerun the stage (`make report`)"
        )
    try:
        return schema.model_validate(values)
    except ValidationError as error:
        raise UserError(f"{path} does not match {schema.__name__}: {error}") from error


# Each stage's result file (``runs/<run>/<stage>.json``) and schema, in pipeline order.
STAGE_RESULTS: dict[str, type[StageResult]] = {
    "model": ModelResult,
    "quantize": QuantizeResult,
    "accuracy": AccuracyResult,
    "latency": LatencyResult,
    "cloudflare": EndpointResult,
}
