"""Stage 50's result: the remote endpoint scored like a local system."""

from __future__ import annotations

from .accuracy import SystemAccuracy
from .core import StageResult
from .latency import LatencyStats


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
