"""Non-inferiority against fp32: Newcombe's paired interval (against published examples), the verdict
at the run's margin, the minimum detectable difference, Holm's correction and the report's table."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, binomtest

from sst2bench.accuracy import PredictionRecord, compare
from sst2bench.noninferiority import (
    DESCRIPTIVE,
    HOLM,
    INCONCLUSIVE,
    INFERIOR,
    NEWCOMBE,
    NON_INFERIOR,
    PairedTable,
    detectable_difference,
    holm,
    margin_for,
    newcombe_interval,
    noninferiority_notes,
    noninferiority_table,
    verdict,
)
from sst2bench.results import Comparison, SystemAccuracy
from sst2bench.stages.accuracy import judged

# ------------------------------------------------------------------ Newcombe's interval, published values


def test_newcombe_method_10_matches_newcombes_own_example():
    """Newcombe R.G. (1998) Stat Med 17:2635-2650, method 10 on his example with cells a=20, b=12,
    c=2, d=16 (p1 = (a+b)/n, p2 = (a+c)/n): 0.0562 to 0.3292, as reproduced in the tests of the
    ratesci R package (Laud), which check against the paper."""
    low, high = newcombe_interval(PairedTable(both=20, only_candidate=12, only_baseline=2, neither=16))
    assert (round(low, 4), round(high, 4)) == (0.0562, 0.3292)


def test_newcombe_method_10_matches_fagerland_lydersen_laake():
    """Fagerland, Lydersen & Laake (2014) Stat Med 33:2850-2875, Newcombe hybrid score interval for
    Bentur et al. (2009): airway hyper-responsiveness before/after transplantation, table
    [[1, 1], [7, 12]]: -0.507 to -0.026."""
    low, high = newcombe_interval(PairedTable(both=1, only_candidate=1, only_baseline=7, neither=12))
    assert (round(low, 3), round(high, 3)) == (-0.507, -0.026)


@pytest.mark.parametrize("both,neither", [(436, 436), (780, 92), (872, 0), (0, 872)])
def test_no_discordant_pairs_gives_an_interval_of_real_width_around_zero(both, neither):
    """Two systems that never disagree: the difference is 0 but not known to be exactly 0. A paired
    bootstrap (and Newcombe without his n/2 correction, when both = neither) would print [0, 0]."""
    table = PairedTable(both, 0, 0, neither)
    low, high = newcombe_interval(table)
    assert low < 0 < high and low == pytest.approx(-high)
    # Never wider than the largest difference the discordance could hide: the Wilson bound of 0 of n flips.
    assert high <= binomtest(0, table.n).proportion_ci(method="wilson").high * (1 + 1e-9)
    larger = newcombe_interval(PairedTable(10 * both, 0, 0, 10 * neither))
    assert 0 < larger[1] - larger[0] < high - low


def test_the_interval_follows_the_direction_of_the_flips():
    low, high = newcombe_interval(PairedTable(800, 2, 12, 58))  # the candidate lost 10 net
    assert high < 0 and low < (2 - 12) / 872 < high
    mirrored = newcombe_interval(PairedTable(800, 12, 2, 58))
    assert mirrored == pytest.approx((-high, -low))


# ------------------------------------------------------------------------------------------ the verdict


def test_verdict_at_the_margin():
    margin = margin_for(0.99, 0.9)
    assert margin == pytest.approx(0.01 * 0.9)
    assert verdict(-margin / 2, margin, margin) == NON_INFERIOR
    assert verdict(-3 * margin, -2 * margin, margin) == INFERIOR
    assert verdict(-2 * margin, 0.0, margin) == INCONCLUSIVE
    assert verdict(-margin, 0.0, margin) == INCONCLUSIVE  # "above −margin": touching it is not enough
    assert verdict(-2 * margin, -margin, margin) == INCONCLUSIVE


def test_a_wide_interval_around_zero_is_inconclusive_not_non_inferior():
    """The issue's case: a point count inside the floor is not evidence when the interval reaches past the margin."""
    table = PairedTable(700, 20, 20, 132)  # net 0 of 872, 40 flips
    low, high = newcombe_interval(table)
    margin = margin_for(0.99, 720 / 872)
    assert low < -margin < 0 < high and verdict(low, high, margin) == INCONCLUSIVE
    assert verdict(*newcombe_interval(PairedTable(720, 0, 0, 152)), margin) == NON_INFERIOR


# ------------------------------------------------------------------------- the minimum detectable difference


def _exact_mcnemar_power(n: int, discordance: float, delta: float, draws: int = 20000) -> float:
    """Share of simulated splits on which the exact McNemar test (the one the project prints) rejects at 0.05."""
    rng = np.random.default_rng(0)
    counts = rng.multinomial(n, [(discordance + delta) / 2, (discordance - delta) / 2, 1 - discordance], size=draws)
    gained, lost = counts[:, 0], counts[:, 1]
    p = np.minimum(1.0, 2 * binom.cdf(np.minimum(gained, lost), gained + lost, 0.5))
    return float(np.mean(p < 0.05))


@pytest.mark.parametrize("table", [PairedTable(780, 20, 20, 52), PairedTable(780, 0, 0, 92)])
def test_detectable_difference_is_detected_about_four_times_in_five(table):
    """At the minimum detectable difference (and the discordance it assumes), the exact McNemar test
    rejects in about 80 % of splits of this size: the number means what its label says."""
    delta = detectable_difference(table)
    assert 0 < delta < 1
    power = _exact_mcnemar_power(table.n, max(table.discordance, delta), delta)
    assert power == pytest.approx(0.8, abs=0.05)
    assert _exact_mcnemar_power(table.n, max(table.discordance, delta / 2), delta / 2) < 0.5


def test_detectable_difference_shrinks_with_more_examples_and_grows_with_discordance():
    base = detectable_difference(PairedTable(780, 20, 20, 52))
    assert detectable_difference(PairedTable(7800, 200, 200, 520)) < base
    assert detectable_difference(PairedTable(760, 30, 30, 52)) > base
    assert detectable_difference(PairedTable(3, 0, 0, 0)) == 1.0  # three examples cannot detect anything


# ------------------------------------------------------------------------------------------------- Holm


def test_holm_rejects_exactly_what_the_step_down_procedure_rejects():
    """Adjusted p ≤ α must reject the same hypotheses as Holm's procedure run at α (Holm 1979)."""
    p_values = [0.01, 0.04, 0.03, 0.005, 0.5, 0.012]
    adjusted = holm(p_values)
    m = len(p_values)
    for alpha in np.linspace(0.001, 0.2, 200):
        rejected, order = set(), sorted(range(m), key=lambda i: p_values[i])
        for rank, i in enumerate(order):
            if p_values[i] > alpha / (m - rank):
                break
            rejected.add(i)
        assert {i for i in range(m) if adjusted[i] <= alpha} == rejected
    assert all(a >= p for a, p in zip(adjusted, p_values)) and max(adjusted) <= 1.0
    assert holm([0.03]) == [0.03] and holm([]) == []


# ------------------------------------------------------------------------ stored results and the table


def records(labels, gold):
    return [PredictionRecord(i, g, p, 0.9, [0.1, 0.9] if p else [0.9, 0.1]) for i, (p, g) in enumerate(zip(labels, gold))]


GOLD = [1] * 900 + [0] * 100
FP32 = [1] * 880 + [0] * 20 + [0] * 100  # 980 of 1000 correct
SAME = list(FP32)
LOSSY = [0] * 40 + [1] * 840 + [0] * 20 + [0] * 100  # 40 newly wrong: 940 correct
NOISY = [0] * 20 + [1] * 860 + [1] * 20 + [0] * 100  # 20 lost, 20 gained


def comparisons():
    baseline = records(FP32, GOLD)
    return {
        name: Comparison(**compare(baseline, records(labels, GOLD)))
        for name, labels in (("same", SAME), ("lossy", LOSSY), ("noisy", NOISY))
    }


def test_compare_stores_the_newcombe_interval_and_the_detectable_difference():
    found = comparisons()
    same = found["same"]
    assert same.difference_ci95_method == NEWCOMBE and same.difference_ci95[0] < 0 < same.difference_ci95[1]
    assert same.difference_ci95 == pytest.approx(list(newcombe_interval(PairedTable(980, 0, 0, 20))))
    assert found["lossy"].detectable_difference == pytest.approx(detectable_difference(PairedTable(940, 0, 40, 20)))


def test_judged_applies_the_runs_margin_and_holm_within_the_set():
    found = judged(comparisons(), 0.99)
    assert {name: vs.noninferiority.verdict for name, vs in found.items()} == {
        "same": NON_INFERIOR,
        "lossy": INFERIOR,
        "noisy": INCONCLUSIVE,
    }
    assert found["lossy"].noninferiority.margin == pytest.approx(0.01 * 0.98)
    assert Comparison.model_validate_json(found["lossy"].model_dump_json()) == found["lossy"]  # written and read back whole
    raw = [found[name].mcnemar_exact_p for name in ("same", "lossy", "noisy")]
    assert [found[name].mcnemar_holm_p for name in ("same", "lossy", "noisy")] == pytest.approx(holm(raw))
    assert found["lossy"].mcnemar_holm_p > found["lossy"].mcnemar_exact_p
    # The margin comes from the params: a looser floor turns the noisy system non-inferior.
    assert judged(comparisons(), 0.9)["noisy"].noninferiority.verdict == NON_INFERIOR


def scored(name, correct, vs):
    return SystemAccuracy(
        system=name,
        family="int8",
        n=1000,
        correct=correct,
        accuracy=correct / 1000,
        accuracy_pct=correct / 10,
        accuracy_ci95=[0.0, 1.0],
        macro_f1=0.0,
        precision=0.0,
        recall=0.0,
        confusion_matrix=[[0, 0], [0, 0]],
        confusion_matrix_axes="",
        seconds=0.0,
        predictions="",
        vs_fp32=vs,
    )


def test_the_table_shows_each_systems_interval_verdict_power_and_labelled_p_values():
    found = judged(comparisons(), 0.99)
    old = Comparison.model_validate(  # a result written before this module: loads, is not judged
        {
            k: v
            for k, v in found["noisy"].model_dump().items()
            if k not in ("difference_ci95_method", "detectable_difference", "mcnemar_holm_p", "noninferiority")
        }
    )
    systems = {
        "fp32-torch": scored("fp32-torch", 980, None),
        "same": scored("same", 980, found["same"]),
        "lossy": scored("lossy", 940, found["lossy"]),
        "old": scored("old", 980, old),
    }
    table = noninferiority_table(systems).set_index("system")
    assert table.loc["fp32-torch", "verdict"] == "reference (fp32)"
    lossy = table.loc["lossy"]
    assert lossy["correct / n"] == "940/1000" and lossy["Δ vs fp32 (examples)"] == "-40" and lossy["Δ vs fp32 (points)"] == "-4.00"
    assert lossy["verdict"] == INFERIOR and lossy["margin (points)"] == "-0.98"
    low, high = found["lossy"].difference_ci95
    assert lossy["95 % CI of Δ (examples)"] == f"{1000 * low:+.1f} to {1000 * high:+.1f}"
    assert lossy["detectable Δ (examples)"] == f"{1000 * found['lossy'].detectable_difference:.1f}"
    assert lossy[f"McNemar p ({DESCRIPTIVE})"] == "<0.001" and found["lossy"].mcnemar_holm_p < 0.001  # 40 flips, all one way
    noisy = noninferiority_table({"noisy": scored("noisy", 980, found["noisy"])}).iloc[0]
    assert noisy[f"McNemar p ({DESCRIPTIVE})"] == f"{found['noisy'].mcnemar_exact_p:.3f}"
    assert noisy[f"McNemar p ({HOLM})"] == f"{found['noisy'].mcnemar_holm_p:.3f}"
    assert table.loc["same", "verdict"] == NON_INFERIOR
    assert table.loc["old", "verdict"].startswith("not judged") and pd.isna(table.loc["old", "95 % CI of Δ (points)"])
    notes = " ".join(noninferiority_notes(systems))
    assert "check.min_relative_accuracy = 0.99" in notes and "Holm" in notes and "80 % power" in notes
