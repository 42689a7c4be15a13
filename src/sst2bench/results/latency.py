"""Stage 40's result: the latency sweep."""

from __future__ import annotations

from pydantic import ConfigDict

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
