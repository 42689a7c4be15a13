"""Is an int8 system non-inferior to fp32 on a split? The paired difference, its interval, a verdict.

Two systems scored on the same examples give a paired 2×2 table: examples both get right, only
one gets right, neither. The difference in accuracy (candidate − baseline) then gets Newcombe's
hybrid score interval for paired proportions (Newcombe 1998, *Statistics in Medicine* 17:2635,
method 10): Wilson intervals for the two accuracies, combined with the correlation of the pairs.
Unlike a paired bootstrap it does not collapse to zero width when the two systems never disagree
(the bootstrap's differences are then all zero).

A verdict compares the interval with a margin (the run's relative floor, ``check.min_relative_accuracy``,
applied to fp32's accuracy); the power statement says the smallest difference the split could
detect; p-values from several comparisons on one split are Holm-corrected within that set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

    from .results import SystemAccuracy

NEWCOMBE = "Newcombe 1998 method 10 (hybrid score, paired)"
Verdict = Literal["non-inferior", "inconclusive", "inferior"]
NON_INFERIOR, INCONCLUSIVE, INFERIOR = "non-inferior", "inconclusive", "inferior"
# How the p-values are labelled wherever they are printed.
DESCRIPTIVE, HOLM = "descriptive", "Holm-corrected within the set"
CONFIDENCE = 0.95
# The minimum detectable difference: a two-sided McNemar test at this level with this power.
DETECT_ALPHA, DETECT_POWER = 0.05, 0.80


@dataclass(frozen=True)
class PairedTable:
    """Counts of one split's examples by which of the two systems got them right."""

    both: int
    only_candidate: int
    only_baseline: int
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.only_candidate + self.only_baseline + self.neither

    @property
    def difference(self) -> float:
        """Candidate accuracy − baseline accuracy."""
        return (self.only_candidate - self.only_baseline) / self.n

    @property
    def discordance(self) -> float:
        """Share of examples exactly one system gets right."""
        return (self.only_candidate + self.only_baseline) / self.n


def _wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    from scipy.stats import binomtest

    interval = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def newcombe_interval(table: PairedTable, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Newcombe's method 10 interval for candidate − baseline accuracy on paired examples.

    The correlation term φ uses Newcombe's correction (the cross-product reduced by n/2, and 0 when
    that leaves it between 0 and n/2), which is also what keeps the interval from collapsing when the
    two systems never disagree."""
    n = table.n
    if n == 0:
        raise ValueError("no examples")
    a, b, c, d = table.both, table.only_candidate, table.only_baseline, table.neither
    p1, p2 = (a + b) / n, (a + c) / n  # candidate, baseline
    l1, u1 = _wilson(a + b, n, confidence)
    l2, u2 = _wilson(a + c, n, confidence)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    if margins == 0 or 0 <= cross <= n / 2:
        phi = 0.0
    else:
        phi = (cross - n / 2 if cross > n / 2 else cross) / math.sqrt(margins)
    below = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    above = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, p1 - p2 - below), min(1.0, p1 - p2 + above)


def verdict(low: float, high: float, margin: float) -> Verdict:
    """Non-inferior when the whole interval lies above −margin, inferior when it lies below, else inconclusive."""
    if low > -margin:
        return NON_INFERIOR
    if high < -margin:
        return INFERIOR
    return INCONCLUSIVE


def margin_for(min_relative_accuracy: float, baseline_accuracy: float) -> float:
    """The non-inferiority margin as a difference in accuracy: the share of fp32's accuracy the relative floor gives up."""
    return (1 - min_relative_accuracy) * baseline_accuracy


def detectable_difference(table: PairedTable, alpha: float = DETECT_ALPHA, power: float = DETECT_POWER) -> float:
    """The minimum detectable difference: the smallest true |candidate − baseline| that a two-sided
    McNemar test at ``alpha`` on this many examples detects with ``power``, at the split's observed
    discordance (Connor 1987, *Biometrics* 43:207: n = (z_α/2 √ψ + z_β √(ψ − δ²))² / δ², solved for δ).

    A difference δ implies at least |δ| discordant examples, so the discordance used is never below
    δ itself: a split on which the systems never disagree still has a finite detectable difference
    (the one all-one-way flips would show), not zero."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    n = table.n
    z_alpha, z_beta = norm.ppf(1 - alpha / 2), norm.ppf(power)

    def excess(delta: float) -> float:
        psi = max(table.discordance, delta)
        return delta * math.sqrt(n) - z_alpha * math.sqrt(psi) - z_beta * math.sqrt(max(0.0, psi - delta**2))

    if excess(1.0) <= 0:  # too few examples to detect even the largest difference
        return 1.0
    return float(brentq(excess, 1e-12, 1.0, xtol=1e-12))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the order given: the i-th smallest of m is
    multiplied by m − i + 1, kept non-decreasing, capped at 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# ------------------------------------------------------------------------------ the report's table


def _points(value: float) -> str:
    return f"{100 * value:+.2f}"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def noninferiority_table(systems: dict[str, SystemAccuracy]) -> pd.DataFrame:
    """Every system against fp32 on one split (the systems of one ``AccuracyResult`` or ``EvalSetResult``):
    correct count, paired Δ in examples and points, its 95 % interval, the verdict at the run's margin,
    the minimum detectable difference, and the McNemar p-value twice, labelled: descriptive and
    Holm-corrected within the set (the systems of that split). Read from the stored results only."""
    import pandas as pd

    rows = []
    for name, scored in systems.items():
        vs = scored.vs_fp32
        row = {"system": name, "correct / n": f"{scored.correct}/{scored.n}"}
        if vs is None:
            rows.append({**row, "verdict": "reference (fp32)"})
            continue
        judged = vs.noninferiority
        exact = vs.difference_ci95_method == NEWCOMBE
        low, high = vs.difference_ci95
        rows.append(
            {
                **row,
                "Δ vs fp32 (examples)": f"{vs.difference_examples:+d}",
                "Δ vs fp32 (points)": _points(vs.difference),
                "95 % CI of Δ (points)": f"{_points(low)} to {_points(high)}" if exact else None,
                "95 % CI of Δ (examples)": f"{low * vs.n:+.1f} to {high * vs.n:+.1f}" if exact else None,
                "margin (points)": f"{-100 * judged.margin:.2f}" if judged else None,
                "verdict": judged.verdict if judged else "not judged (no verdict stored)",
                "detectable Δ (points, 80 % power)": f"{100 * vs.detectable_difference:.2f}"
                if vs.detectable_difference is not None
                else None,
                "detectable Δ (examples)": f"{vs.detectable_difference * vs.n:.1f}" if vs.detectable_difference is not None else None,
                f"McNemar p ({DESCRIPTIVE})": _p(vs.mcnemar_exact_p),
                f"McNemar p ({HOLM})": _p(vs.mcnemar_holm_p) if vs.mcnemar_holm_p is not None else None,
            }
        )
    return pd.DataFrame(rows)


def noninferiority_notes(systems: dict[str, SystemAccuracy]) -> list[str]:
    """The footnotes that say how to read :func:`noninferiority_table`."""
    judged = [s.vs_fp32 for s in systems.values() if s.vs_fp32 is not None and s.vs_fp32.noninferiority is not None]
    notes = [
        f"Δ: the system's accuracy minus fp32's on the same examples; 95 % interval by {NEWCOMBE}.",
    ]
    if judged:
        floor = judged[0].noninferiority.min_relative_accuracy
        notes.append(
            f"Margin: {100 * (1 - floor):g} % of fp32's accuracy (the run's floor, check.min_relative_accuracy = {floor:g}). "
            "Non-inferior: the whole interval lies above −margin; inferior: the whole interval lies below it; else inconclusive."
        )
    notes += [
        f"Detectable Δ: the smallest true difference a two-sided McNemar test (α = {DETECT_ALPHA:g}) on this split detects with "
        f"{100 * DETECT_POWER:g} % power at the observed discordance (Connor 1987): a smaller true loss is likely to pass unnoticed.",
        f"McNemar p ({DESCRIPTIVE}): exact, one comparison alone. McNemar p ({HOLM}): Holm's correction across every system "
        "compared with fp32 on this split.",
    ]
    return notes
