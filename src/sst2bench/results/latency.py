"""Stage 40's result: interleaved latency rounds, speed ratios with their spread, and the machine's limit."""

from __future__ import annotations

from collections.abc import Sequence

from .core import Schema, StageResult


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
    """One system at one (threads, batch, padding, batching) setting: calls pooled over every round.

    Print a percentile only if it is in ``supported_percentiles`` (the rule is in
    ``sst2bench.latency.supported_percentiles``), with its interval from ``percentile_intervals_ms``;
    compare systems with ``round_p50_ms``, one p50 per round in ``rounds`` order (``round_positions``:
    the system's place in each round's random order). ``batching`` names how batches were formed
    (``sst2bench.latency.batch_plan``; results written before it existed batched in sample order).
    The forward pass is the call minus its tokenizer time. Memory is what the model adds to its own
    process (current RSS, before the load subtracted)."""

    system: str
    family: str
    backend: str = ""  # the registered backend that ran it (results written before it was kept: empty)
    threads: int
    batch_size: int
    padding: str
    batching: str = "sample-order"
    supported_percentiles: list[int]
    percentile_intervals_ms: dict[str, list[float]] = {}  # "p50": [low, high] at the run's percentile_confidence
    rounds: list[int]
    round_positions: list[int] = []
    round_p50_ms: list[float]
    tokenize_p50_ms: float | None = None
    tokenize_mean_ms: float | None = None
    forward_p50_ms: float | None = None
    forward_mean_ms: float | None = None
    durations_ms: list[float]
    load_seconds: float
    warmup_pass_calls: int = 0  # untimed calls before timing: one per distinct batch (input shape)
    warmup_pass_seconds: float = 0.0
    rss_shared_libraries_mib: float  # transformers (and torch) imported before the baseline, counted apart
    rss_before_load_mib: float
    rss_added_after_load_mib: float
    rss_added_after_calls_mib: float
    thread_settings: dict

    @property
    def p50_of_rounds_ms(self) -> float:
        """The median of the per-round p50s: the one statistic the headline, the recommendation and
        the speed-up ratios (taken per round) all rest on; the pooled ``p50_ms`` keeps its interval."""
        import numpy as np

        return float(np.median(self.round_p50_ms)) if self.round_p50_ms else self.p50_ms

    def interval_text(self, percentile: int) -> str | None:
        """``"[low, high]"`` for a supported percentile with a recorded interval, else None."""
        found = self.percentile_intervals_ms.get(f"p{percentile}")
        return f"[{found[0]:.2f}, {found[1]:.2f}]" if found and percentile in self.supported_percentiles else None


class SpeedRatio(Schema):
    """p50 of the baseline over p50 of the system (higher is faster), per round: the median and
    the range. A bar counts as met only when ``low`` clears it (see :meth:`clears`)."""

    system: str
    baseline: str
    threads: int
    batch_size: int
    padding: str
    median: float
    low: float
    high: float
    rounds: int

    def clears(self, bar: float) -> bool:
        return self.low >= bar


class PeakThroughput(Schema):
    """One matrix-multiply graph timed in ONNX Runtime: best of ``repeats`` calls."""

    precision: str  # fp32, int8 (MatMulInteger u8×s8) or int8-dynamic (DynamicQuantizeMatMul, activations quantized per call)
    shape: str  # "large" (one square GEMM) or "model" (every weight GEMM of the model at the sample's mean tokens)
    rows: int
    macs: int  # multiply-adds per call of the graph; one multiply-add counts as two operations
    threads: int
    best_ms: float
    median_ms: float
    gops_per_second: float


class MachineLimit(Schema):
    """This CPU's matrix-multiply throughput, measured with the runtime the systems use."""

    method: str
    cpu: str
    isa: list[str]
    runtime: str
    repeats: int
    peaks: list[PeakThroughput]
    # Measurements that fail a peak's sanity checks even after re-measuring (peak.suspect_peaks): the
    # report prints them beside the limit, and fractions built on them are not to be trusted.
    flags: list[str] = []

    def gops(self, precision: str, shape: str, threads: int) -> float | None:
        found = [p.gops_per_second for p in self.peaks if (p.precision, p.shape, p.threads) == (precision, shape, threads)]
        return found[0] if found else None


class PeakFraction(Schema):
    """A system's forward pass against the machine's limit at batch 1: its multiply-adds per call
    (mean over the latency sample), split by the precision each GEMM runs in, and the time those
    would take at the measured peaks over the forward time measured. Speed-up headroom is 1 / fraction."""

    system: str
    threads: int
    tokens_mean: float
    macs_int8: float
    macs_fp32: float
    forward_mean_ms: float
    achieved_gops_per_second: float
    fraction_of_model_shape_peak: float | None
    fraction_of_large_peak: float | None
    note: str = ""


class OpProfile(Schema):
    """Where one system's forward pass goes, from its runtime's profiler (``sst2bench.profile``):
    batch 1, one thread, one sample sentence per call, after an untimed pass over them."""

    calls: int
    source: str
    ms_per_call: dict[str, float]  # by category (profile.CATEGORIES), every category present
    top_ops: dict[str, float] = {}  # the op types with the most time per call

    def shares(self) -> dict[str, float]:
        total = sum(self.ms_per_call.values())
        return {k: v / total for k, v in self.ms_per_call.items()} if total else {}


class LatencyResult(StageResult):
    quick: bool = False
    settings: dict = {}
    texts: list[str] = []
    token_lengths: list[int] = []  # each text's tokens: what length-bucketed batches sort by
    results: list[LatencyMeasurement] = []
    ratios: list[SpeedRatio] = []
    size_mib: dict[str, float] = {}
    # Median per-round ratio at batch 1, 1 thread, dynamic padding (see ``ratios`` for the range).
    speedup_vs_fp32_ort: dict[str, float] = {}
    speedup_vs_fp32_torch: dict[str, float] = {}
    peak: MachineLimit | None = None
    peak_fractions: list[PeakFraction] = []
    # Per system: its forward time by kind of op (batch 1, 1 thread), from its runtime's profiler.
    profiles: dict[str, OpProfile] = {}
    skipped: dict[str, str] = {}

    def measurement(
        self, system: str, threads: int = 1, batch_size: int = 1, padding: str = "dynamic", batching: str | None = None
    ) -> LatencyMeasurement | None:
        """The system at one setting; ``batching`` None takes whichever rule was measured (a run has one)."""
        found = [
            r
            for r in self.results
            if (r.system, r.threads, r.batch_size, r.padding) == (system, threads, batch_size, padding) and batching in (None, r.batching)
        ]
        return found[0] if found else None

    def table(self):
        """One row per system and setting, fastest first within a setting; unsupported percentiles blank,
        supported ones with their distribution-free interval."""
        import pandas as pd

        columns = ["system", "threads", "batch_size", "padding", "batching", "count", "p50_ms", "p50_interval_ms", "p90_ms"]
        columns += ["p99_ms", "p99_interval_ms", "forward_p50_ms", "tokenize_p50_ms", "samples_per_second", "rss_added_after_calls_mib"]
        rows = []
        for r in self.results:
            row = r.model_dump(include=set(columns))
            for p in (90, 99):
                if p not in r.supported_percentiles:
                    row[f"p{p}_ms"] = None
            row["p50_interval_ms"], row["p99_interval_ms"] = r.interval_text(50), r.interval_text(99)
            rows.append(row)
        return pd.DataFrame(rows, columns=columns).sort_values(
            ["threads", "padding", "batching", "batch_size", "p50_ms"], ignore_index=True
        )


def faster_baseline(
    result: LatencyResult, baselines: Sequence[str], threads: int = 1, batch_size: int = 1, padding: str = "dynamic"
) -> str | None:
    """Of ``baselines``, the one measured at this setting with the lowest median per-round p50."""
    import numpy as np

    measured = [
        (float(np.median(m.round_p50_ms)), name) for name in baselines if (m := result.measurement(name, threads, batch_size, padding))
    ]
    return min(measured)[1] if measured else None


def ratio_summary(
    result: LatencyResult, system: str, baseline: str | Sequence[str], threads: int = 1, batch_size: int = 1, padding: str = "dynamic"
) -> SpeedRatio | None:
    """The system's speed-up over ``baseline`` (or over the faster of several), one ratio per round
    both were measured in, from that round's p50s: the median and the min–max across rounds."""
    import numpy as np

    if not isinstance(baseline, str):
        baseline = faster_baseline(result, baseline, threads, batch_size, padding)
    ours = result.measurement(system, threads, batch_size, padding)
    theirs = result.measurement(baseline, threads, batch_size, padding) if baseline else None
    if ours is None or theirs is None:
        return None
    base = dict(zip(theirs.rounds, theirs.round_p50_ms))
    per_round = [base[r] / p50 for r, p50 in zip(ours.rounds, ours.round_p50_ms) if r in base]
    if not per_round:
        return None
    return SpeedRatio(
        system=system,
        baseline=baseline,
        threads=threads,
        batch_size=batch_size,
        padding=padding,
        median=float(np.median(per_round)),
        low=min(per_round),
        high=max(per_round),
        rounds=len(per_round),
    )
