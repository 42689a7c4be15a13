"""Stage 30's result: every system scored on the reported split and the other evaluation sets."""

from __future__ import annotations

from typing import Literal

from .core import Schema, StageResult, Status


class Disagreement(Schema):
    idx: int
    gold: int
    baseline_label: int
    baseline_score: float
    candidate_label: int
    candidate_score: float
    sentence: str = ""


class NonInferiority(Schema):
    """The paired difference judged at the run's margin (``sst2bench.noninferiority``): what the
    report prints and the recommendation prefers."""

    # The floor the margin comes from (params check.min_relative_accuracy) and the margin itself, as a
    # difference in accuracy (positive: the bound is −margin).
    min_relative_accuracy: float
    margin: float
    verdict: Literal["non-inferior", "inconclusive", "inferior"]


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
    # Exact McNemar p of this one comparison: descriptive.
    mcnemar_exact_p: float
    agreement: float
    disagreements: list[Disagreement]
    # How difference_ci95 was computed: results written before the Newcombe interval hold a paired bootstrap's.
    difference_ci95_method: str = "percentile bootstrap (paired)"
    # The minimum detectable difference (accuracy, either sign) at 80 % power (noninferiority.detectable_difference).
    detectable_difference: float | None = None
    # mcnemar_exact_p Holm-corrected across every system compared with fp32 on the same split.
    mcnemar_holm_p: float | None = None
    noninferiority: NonInferiority | None = None


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
    # For the tuning split's scores: which part of it they are on ("select": held out of every
    # trial; "tune": the part trials scored, when the run keeps no select part).
    part: str | None = None
    status: Status = "done"
    reason: str = ""
    n: int = 0
    systems: dict[str, SystemAccuracy] = {}


class SeedSpread(Schema):
    """A static recipe's correct count on the reported split for each calibration seed."""

    counts: dict[int, int]
    n: int
    min: int
    median: float
    max: int


class CrossfitFoldScore(Schema):
    tuned_on: int
    scored_on: int
    correct: int


class CrossfitEstimate(Schema):
    """2-fold cross-fitting on the reported split: tune on one half, score the other, swap, add the counts.
    ``tuned_on_reported`` names the system tuned on the whole reported split, to show beside it."""

    correct: int
    total: int
    folds: list[CrossfitFoldScore]
    tuned_on_reported: str


class AccuracyResult(StageResult):
    split: str = ""
    n: int = 0
    systems: dict[str, SystemAccuracy] = {}
    skipped: dict[str, str] = {}
    # The run's other evaluation sets (params ``evaluation_sets``), by name.
    sets: dict[str, EvalSetResult] = {}
    # Every system on the tuning split's select part (params ``data.tuning``; ``source`` names where
    # it comes from, ``part`` which part): where a recommendation is made, so that no trial's
    # evidence and not the reported split decides it.
    tuning: EvalSetResult | None = None
    # Per static recipe: its count over the run's calibration seeds.
    seeds: dict[str, SeedSpread] = {}
    # Per accuracy-aware recipe: the held-out estimate by cross-fitting on the reported split.
    crossfit: dict[str, CrossfitEstimate] = {}


class FinalResult(StageResult):
    """The final split (params ``final_test``), scored by the final stage after every choice was made:
    no preset, tuning, selection or threshold read it. Each system is paired with fp32 there."""

    source: str = ""
    sha256: str = ""
    n: int = 0
    systems: dict[str, SystemAccuracy] = {}
