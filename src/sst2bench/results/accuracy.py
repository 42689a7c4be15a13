"""Stage 30's result: every system scored on the reported split and the other evaluation sets."""

from __future__ import annotations

from .core import Schema, StageResult, Status


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
