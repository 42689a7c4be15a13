"""Which system to deploy: chosen on the tuning split's select part (no trial scored it), reported on the validation split.

A candidate qualifies when it keeps at least ``min_relative_accuracy`` of fp32's correct count
(counted in whole examples, as the gate counts) and agrees with fp32 on at least
``min_agreement`` of the examples; among those, the fastest at batch 1 / 1 thread (p50) and the one
with the highest throughput at any measured setting. Among the qualifying, a system shown
non-inferior to fp32 on that split (``noninferiority``: the 95 % interval of the paired difference
lies above −margin, the margin being what the relative floor gives up) is preferred to one that is
not; when none is, the choice falls back to point counts and the sentence says so. A remote
endpoint is never a candidate: its latency is a network round-trip, not a call.
"""

from __future__ import annotations

from pydantic import BaseModel

from .accuracy import needed_correct
from .noninferiority import NEWCOMBE, NON_INFERIOR, margin_for, verdict
from .results import FP32_TORCH, SystemAccuracy


class CandidateScore(BaseModel):
    """One system on the split the choice is made on, and its speed."""

    system: str
    family: str
    correct: int
    n: int
    fp32_correct: int
    agreement: float
    # The median of the per-round p50s at batch 1 / 1 thread: the statistic the speed-up ratios are taken from.
    p50_ms_batch1_1thread: float | None = None
    # Each round's p50 there; two candidates whose ranges overlap are tied on speed.
    round_p50_ms: list[float] = []
    best_samples_per_second: float | None = None
    best_setting: str = ""
    # Newcombe's 95 % interval of (this − fp32) accuracy on the same split; None for fp32 itself or when not computed.
    difference_ci95: list[float] | None = None


class Pick(BaseModel):
    system: str
    value: float
    unit: str


class Recommendation(BaseModel):
    """The choice, the rules it applied, and why every other candidate was passed over."""

    chosen_on: str
    reported_on: str
    min_relative_accuracy: float
    min_agreement: float | None
    needed_correct: int | None = None
    fp32_correct: int | None = None
    latency: Pick | None = None
    throughput: Pick | None = None
    excluded: dict[str, str] = {}
    # The non-inferiority margin (accuracy, positive) and each judged candidate's verdict at it.
    margin: float | None = None
    verdicts: dict[str, str] = {}
    candidates: list[CandidateScore] = []
    sentence: str

    @property
    def system(self) -> str | None:
        return self.latency.system if self.latency else None


# Why a candidate is passed over, in the order the rules are applied.
TOO_FEW_CORRECT, TOO_LITTLE_AGREEMENT, NOT_TIMED = "too few correct", "too little agreement with fp32", "no latency measured"


def _exclusion(candidate: CandidateScore, needed: int, min_agreement: float | None) -> tuple[str, str] | None:
    """(rule broken, the candidate's value) or None when it qualifies."""
    if candidate.correct < needed:
        return TOO_FEW_CORRECT, f"{candidate.correct}"
    if min_agreement is not None and candidate.agreement < min_agreement:
        return TOO_LITTLE_AGREEMENT, f"{100 * candidate.agreement:.1f} %"
    if candidate.p50_ms_batch1_1thread is None and candidate.best_samples_per_second is None:
        return NOT_TIMED, ""
    return None


def _passed_over(exclusions: dict[str, tuple[str, str]], needed: int, min_agreement: float | None) -> str:
    """ "fewer than 774 correct: a 769, b 760; agreement below 99 %: c 98.9 %", grouped by rule."""
    titles = {
        TOO_FEW_CORRECT: f"fewer than {needed} correct",
        TOO_LITTLE_AGREEMENT: f"agreement below {100 * (min_agreement or 0):g} %",
        NOT_TIMED: "no latency measured",
    }
    groups = []
    for rule, title in titles.items():
        names = [f"{name} {value}".strip() for name, (broken, value) in exclusions.items() if broken == rule]
        if names:
            groups.append(f"{title}: {', '.join(names)}")
    return "; ".join(groups)


def _ranges_overlap(a: CandidateScore, b: CandidateScore) -> bool:
    """Whether the two candidates' per-round p50 ranges (min–max) overlap; False without rounds."""
    if not a.round_p50_ms or not b.round_p50_ms:
        return False
    return min(a.round_p50_ms) <= max(b.round_p50_ms) and min(b.round_p50_ms) <= max(a.round_p50_ms)


def _ranked_key(candidate: CandidateScore):
    """Ties go to the more accurate, then the more agreeing, then the name (stable and stated)."""
    return (-candidate.correct, -candidate.agreement, candidate.system)


def recommend(
    candidates: list[CandidateScore],
    min_relative_accuracy: float,
    min_agreement: float | None,
    chosen_on: str,
    reported_on: str,
) -> Recommendation:
    """The fastest qualifying candidate at batch 1 / 1 thread and at the best throughput setting,
    taken from those shown non-inferior to fp32 when any qualifying candidate is."""
    rules = dict(chosen_on=chosen_on, reported_on=reported_on, min_relative_accuracy=min_relative_accuracy, min_agreement=min_agreement)
    fp32 = next((c for c in candidates if c.system == FP32_TORCH), None)
    fp32_correct = fp32.correct if fp32 else next((c.fp32_correct for c in candidates), None)
    if fp32_correct is None:
        return Recommendation(**rules, candidates=candidates, sentence="No recommendation: no system was scored.")
    needed = needed_correct(min_relative_accuracy, fp32_correct)
    exclusions = {c.system: why for c in candidates if (why := _exclusion(c, needed, min_agreement))}
    excluded = {name: f"{rule} ({value})" if value else rule for name, (rule, value) in exclusions.items()}
    passing = [c for c in candidates if c.system not in excluded]
    margin = margin_for(min_relative_accuracy, fp32_correct / candidates[0].n)
    # Verdicts of the int8 systems only: an fp32 re-run never flips, so it is always "non-inferior"
    # and would otherwise be preferred over every int8 system whose verdict is inconclusive.
    verdicts = {c.system: verdict(*c.difference_ci95, margin) for c in candidates if c.family == "int8" and c.difference_ci95 is not None}
    shown = [c for c in passing if verdicts.get(c.system) == NON_INFERIOR]
    # Prefer the non-inferior int8 systems (the fp32 ones stay in the pool); without any, the rules above alone.
    pool = [c for c in passing if c.family != "int8" or c in shown] if shown else passing
    timed = [c for c in pool if c.p50_ms_batch1_1thread is not None]
    fastest = min(timed, key=lambda c: (c.p50_ms_batch1_1thread, *_ranked_key(c)), default=None)
    # Speed cannot separate candidates whose per-round p50 ranges overlap: among those, the accuracy ranking decides.
    tied = [fastest, *(c for c in timed if c is not fastest and _ranges_overlap(c, fastest))] if fastest else []
    if len(tied) > 1:
        fastest = min(tied, key=_ranked_key)
    throughput = [c for c in pool if c.best_samples_per_second is not None]
    busiest = min(throughput, key=lambda c: (-c.best_samples_per_second, *_ranked_key(c)), default=None)
    latency_pick = Pick(system=fastest.system, value=fastest.p50_ms_batch1_1thread, unit="ms p50, batch 1, 1 thread") if fastest else None
    throughput_pick = (
        Pick(system=busiest.system, value=busiest.best_samples_per_second, unit=f"samples/s ({busiest.best_setting})") if busiest else None
    )
    rule = f"≥ {needed} of fp32's {fp32_correct} correct ({100 * min_relative_accuracy:g} %)" + (
        f" and ≥ {100 * min_agreement:g} % agreement with fp32" if min_agreement is not None else ""
    )
    passed_over = _passed_over(exclusions, needed, min_agreement)
    if fastest is None and busiest is None:
        sentence = f"No recommendation: no measured system keeps {rule} on {chosen_on}" + (f" ({passed_over})." if passed_over else ".")
    else:
        parts = []
        if fastest:
            parts.append(f"deploy {fastest.system} for single requests ({fastest.p50_ms_batch1_1thread:.2f} ms p50 at batch 1, 1 thread)")
            if len(tied) > 1:
                others = ", ".join(c.system for c in tied if c is not fastest)
                parts[-1] += (
                    f", tied on speed with {others} (their per-round p50 ranges overlap), so chosen for more correct, then more agreement"
                )
        if busiest and (fastest is None or busiest.system != fastest.system):
            parts.append(f"{busiest.system} for throughput ({busiest.best_samples_per_second:.0f} samples/s, {busiest.best_setting})")
        elif busiest:
            parts.append(f"also the highest throughput ({busiest.best_samples_per_second:.0f} samples/s, {busiest.best_setting})")
        kept = f"{len(passing)} systems that keep {rule} on {chosen_on}"
        # After a speed tie the pick is the most accurate of the tied, not the fastest: say so.
        fastest_of = "the fastest (up to that tie) of" if len(tied) > 1 else "the fastest of"
        if not verdicts:
            why = f"{fastest_of} {kept}"
        elif shown:
            which = "the only one" if len(shown) == 1 else f"{fastest_of} the {len(shown)}"
            why = f"of the {kept}, {which} shown {_shown(margin, min_relative_accuracy)}"
            others = [f"{c.system} ({verdicts[c.system]})" for c in passing if verdicts.get(c.system, NON_INFERIOR) != NON_INFERIOR]
            why += f"; not shown non-inferior: {', '.join(others)}" if others else ""
        else:
            why = (
                f"{fastest_of} {kept}; none of those compared with fp32 is shown {_shown(margin, min_relative_accuracy)}, "
                "so this choice rests on point counts alone"
            )
        sentence = f"{'; '.join(parts).capitalize()}: {why}" + (f"; passed over — {passed_over}." if passed_over else ".")
    return Recommendation(
        **rules,
        needed_correct=needed,
        fp32_correct=fp32_correct,
        latency=latency_pick,
        throughput=throughput_pick,
        excluded=excluded,
        margin=margin if verdicts else None,
        verdicts=verdicts,
        candidates=candidates,
        sentence=sentence,
    )


def _shown(margin: float, min_relative_accuracy: float) -> str:
    return (
        f"non-inferior to fp32 at the {100 * (1 - min_relative_accuracy):g} % margin "
        f"(95 % interval of the paired difference above −{100 * margin:.2f} points)"
    )


def candidate_scores(systems: dict[str, SystemAccuracy], latency_b1: dict[str, list[float]], throughput: dict[str, tuple[float, str]]):
    """Candidates from one split's scores (each paired with fp32 PyTorch) and the latency sweep
    (``latency_b1``: each system's per-round p50s at batch 1, 1 thread)."""
    import numpy as np

    fp32 = systems.get(FP32_TORCH)
    out = []
    for name, scored in systems.items():
        if scored.latency != "call":  # a network round-trip is not comparable with a call
            continue
        vs = scored.vs_fp32
        samples, setting = throughput.get(name, (None, ""))
        out.append(
            CandidateScore(
                system=name,
                family=scored.family,
                correct=scored.correct,
                n=scored.n,
                fp32_correct=vs.baseline_correct if vs else (fp32.correct if fp32 else scored.correct),
                agreement=vs.agreement if vs else 1.0,
                p50_ms_batch1_1thread=float(np.median(latency_b1[name])) if latency_b1.get(name) else None,
                round_p50_ms=latency_b1.get(name, []),
                best_samples_per_second=samples,
                best_setting=setting,
                difference_ci95=list(vs.difference_ci95) if vs and vs.difference_ci95_method == NEWCOMBE else None,
            )
        )
    return out
