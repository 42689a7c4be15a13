"""Accuracy with its uncertainty, and paired comparisons of two systems on the same examples.

On SST-2 validation one example is 0.115 points, so every number comes with its count and a
95 % bootstrap interval, and two systems are compared pairwise (exact McNemar, and the paired
difference with Newcombe's interval, see ``noninferiority``) rather than by subtracting two percentages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import UserError
from .systems import Prediction


def needed_correct(share: float, count: int) -> int:
    """⌈share × count⌉ in whole examples, rounded to 9 places first (so 0.99 × 100 asks for 99, not 100)."""
    import math

    return math.ceil(round(share * count, 9))


BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class PredictionRecord:
    """One line of a predictions JSONL file."""

    idx: int
    gold: int
    label: int
    score: float
    probabilities: list[float]


def records_from(idx: Sequence[int], gold: Sequence[int], predictions: Sequence[Prediction]) -> list[PredictionRecord]:
    if not len(idx) == len(gold) == len(predictions):
        raise ValueError("idx, gold and predictions must have the same length")
    return [
        PredictionRecord(int(i), int(g), p.label, round(p.score, 6), [round(x, 6) for x in p.probabilities])
        for i, g, p in zip(idx, gold, predictions)
    ]


def save_predictions(records: Sequence[PredictionRecord], path: Path | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(asdict(record)) + "\n")


def load_predictions(path: Path | str) -> list[PredictionRecord]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: predictions file not found")
    records = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            try:
                records.append(PredictionRecord(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as error:
                raise UserError(f"{path}:{line_no}: not a prediction record ({error})") from error
    return records


def _accuracy_interval(correct) -> tuple[float, float]:
    """95 % percentile bootstrap (scipy), seeded so reruns give the same interval.

    When every example is right (or every one wrong) resampling cannot vary and would print a
    zero-width interval; the Wilson score interval of the count is given instead."""
    import numpy as np
    from scipy.stats import binomtest, bootstrap

    if np.all(correct == correct[0]):
        interval = binomtest(int(correct.sum()), correct.size).proportion_ci(confidence_level=0.95, method="wilson")
        return float(interval.low), float(interval.high)
    result = bootstrap(
        (correct,),
        _mean,
        vectorized=True,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=0.95,
        method="percentile",
        random_state=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _mean(values, axis=-1):
    import numpy as np

    return np.mean(values, axis=axis)


def accuracy_report(gold: Sequence[int], predicted: Sequence[int]) -> dict:
    """Accuracy (count, %, 95 % CI), macro-F1, precision/recall of the positive class, confusion matrix."""
    import numpy as np
    from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

    gold_arr, pred_arr = np.asarray(gold), np.asarray(predicted)
    if gold_arr.size == 0:
        raise UserError("no labelled examples to score")
    if gold_arr.shape != pred_arr.shape:
        raise ValueError("gold and predicted differ in length")
    correct = (gold_arr == pred_arr).astype(float)
    low, high = _accuracy_interval(correct)
    return {
        "n": int(gold_arr.size),
        "correct": int(correct.sum()),
        "accuracy": float(correct.mean()),
        "accuracy_pct": round(100 * float(correct.mean()), 2),
        "accuracy_ci95": [low, high],
        "macro_f1": float(f1_score(gold_arr, pred_arr, average="macro", labels=[0, 1], zero_division=0)),
        "precision": float(precision_score(gold_arr, pred_arr, pos_label=1, zero_division=0)),
        "recall": float(recall_score(gold_arr, pred_arr, pos_label=1, zero_division=0)),
        "confusion_matrix": confusion_matrix(gold_arr, pred_arr, labels=[0, 1]).tolist(),
        "confusion_matrix_axes": "rows gold [negative, positive], columns predicted",
    }


def align(a: Sequence[PredictionRecord], b: Sequence[PredictionRecord]) -> list[tuple[PredictionRecord, PredictionRecord]]:
    """Pair two systems' records by ``idx``; both must cover the same examples with the same gold labels."""
    by_idx = {r.idx: r for r in b}
    if len(by_idx) != len(b) or {r.idx for r in a} != set(by_idx):
        raise UserError("the two prediction sets do not cover the same examples (compare on the same split and limit)")
    pairs = [(r, by_idx[r.idx]) for r in a]
    if any(x.gold != y.gold for x, y in pairs):
        raise UserError("the two prediction sets disagree on gold labels: they come from different data")
    return pairs


def compare(baseline: Sequence[PredictionRecord], candidate: Sequence[PredictionRecord]) -> dict:
    """Paired comparison of ``candidate`` against ``baseline`` on the same examples.

    ``difference`` is candidate accuracy minus baseline accuracy, with Newcombe's paired interval
    and the minimum detectable difference (``noninferiority``); the McNemar test is exact
    (binomial on the discordant pairs). Its p-value is descriptive: the stage adds the Holm-corrected
    one across every system on the split, and the verdict at the run's margin.
    """
    import numpy as np
    from scipy.stats import binomtest

    from .noninferiority import NEWCOMBE, PairedTable, detectable_difference, newcombe_interval

    pairs = align(baseline, candidate)
    base_ok = np.array([x.label == x.gold for x, _ in pairs], dtype=float)
    cand_ok = np.array([y.label == y.gold for _, y in pairs], dtype=float)
    only_baseline = int(((base_ok == 1) & (cand_ok == 0)).sum())
    only_candidate = int(((base_ok == 0) & (cand_ok == 1)).sum())
    discordant = only_baseline + only_candidate
    p_value = float(binomtest(only_candidate, discordant, 0.5).pvalue) if discordant else 1.0
    both = int(((base_ok == 1) & (cand_ok == 1)).sum())
    table = PairedTable(both, only_candidate, only_baseline, len(pairs) - both - discordant)
    low, high = newcombe_interval(table)
    disagreements = [
        {
            "idx": x.idx,
            "gold": x.gold,
            "baseline_label": x.label,
            "baseline_score": x.score,
            "candidate_label": y.label,
            "candidate_score": y.score,
        }
        for x, y in pairs
        if x.label != y.label
    ]
    return {
        "n": len(pairs),
        "baseline_correct": int(base_ok.sum()),
        "candidate_correct": int(cand_ok.sum()),
        "difference_examples": int(cand_ok.sum() - base_ok.sum()),
        "difference": float(cand_ok.mean() - base_ok.mean()),
        "difference_ci95": [low, high],
        "difference_ci95_method": NEWCOMBE,
        "detectable_difference": detectable_difference(table),
        "relative_change": float((cand_ok.sum() - base_ok.sum()) / base_ok.sum()) if base_ok.sum() else 0.0,
        "only_baseline_correct": only_baseline,
        "only_candidate_correct": only_candidate,
        "mcnemar_exact_p": p_value,
        "agreement": 1.0 - len(disagreements) / len(pairs),
        "disagreements": disagreements,
    }
