"""The recommendation: the fastest system that keeps fp32's count and agrees with it, from fabricated scores."""

import pytest

from sst2bench.recommend import CandidateScore, candidate_scores, needed_correct, recommend

RULES = {"min_relative_accuracy": 0.99, "min_agreement": 0.99, "chosen_on": "the tuning split", "reported_on": "validation"}


def candidate(system, correct, agreement, p50=None, samples=None, family="int8", interval=None, rounds=()):
    return CandidateScore(
        round_p50_ms=list(rounds),
        difference_ci95=interval,
        system=system,
        family=family,
        correct=correct,
        n=1000,
        fp32_correct=900,
        agreement=agreement,
        p50_ms_batch1_1thread=p50,
        best_samples_per_second=samples,
        best_setting="batch 32, 2 thr" if samples else "",
    )


FP32 = [candidate("fp32-torch", 900, 1.0, 10.0, 100.0, "fp32"), candidate("fp32-ort", 900, 1.0, 5.0, 300.0, "fp32")]


def test_whole_examples_rounded_as_the_gate_rounds():
    assert needed_correct(0.99, 900) == 891  # 891.0 exactly: no float ceiling to 892
    assert needed_correct(0.99, 781) == 774  # 773.19 → 774


def test_a_faster_system_that_disagrees_with_fp32_is_passed_over():
    fast_disagreeing = candidate("fast-but-different", 899, 0.97, p50=1.0, samples=900.0)
    safe = candidate("safe", 895, 0.995, p50=2.0, samples=800.0)
    rec = recommend([*FP32, fast_disagreeing, safe], **RULES)
    assert rec.system == "safe" and rec.throughput.system == "safe"
    assert rec.excluded == {"fast-but-different": "too little agreement with fp32 (97.0 %)"}
    assert "agreement below 99 %: fast-but-different 97.0 %" in rec.sentence and rec.sentence.startswith("Deploy safe")


def test_too_few_correct_is_passed_over_even_when_it_agrees():
    rec = recommend([*FP32, candidate("lossy", 890, 0.999, p50=1.0), candidate("ok", 891, 0.99, p50=3.0)], **RULES)
    assert rec.system == "ok" and "fewer than 891 correct: lossy 890" in rec.sentence


def test_without_the_agreement_rule_the_disagreeing_system_wins():
    """The rule acts: the same candidates without it give another answer."""
    candidates = [*FP32, candidate("fast-but-different", 899, 0.97, p50=1.0), candidate("safe", 895, 0.995, p50=2.0)]
    assert recommend(candidates, **{**RULES, "min_agreement": None}).system == "fast-but-different"


def test_ties_go_to_the_more_accurate_then_the_name():
    tied = [
        candidate("b-more-correct", 899, 0.995, p50=2.0),
        candidate("a-fewer", 895, 0.995, p50=2.0),
        candidate("c-same", 899, 0.995, p50=2.0),
    ]
    assert recommend([*FP32, *tied], **RULES).system == "b-more-correct"


def test_latency_and_throughput_picks_can_differ():
    rec = recommend(
        [*FP32, candidate("snappy", 899, 1.0, p50=1.0, samples=500.0), candidate("bulk", 899, 1.0, p50=3.0, samples=999.0)], **RULES
    )
    assert (rec.latency.system, rec.throughput.system) == ("snappy", "bulk")
    assert "bulk for throughput" in rec.sentence


def test_no_candidate_says_so():
    rec = recommend([candidate("fp32-torch", 900, 1.0, family="fp32"), candidate("lossy", 800, 0.9, p50=1.0)], **RULES)
    assert rec.system is None and rec.throughput is None
    assert rec.sentence.startswith("No recommendation") and "lossy" in rec.sentence
    assert rec.excluded["fp32-torch"] == "no latency measured"
    assert recommend([], **RULES).sentence.startswith("No recommendation: no system was scored")


# The margin at 99 % of fp32's 900/1000 is 0.9 points: intervals (accuracy differences) either side of it.
SHOWN, UNSURE, WORSE = [-0.005, 0.004], [-0.02, 0.01], [-0.05, -0.02]


def test_a_non_inferior_system_is_preferred_to_a_faster_one_that_is_not():
    fast = candidate("fast-unsure", 899, 0.995, p50=1.0, samples=900.0, interval=UNSURE)
    shown = candidate("shown", 897, 0.995, p50=2.0, samples=800.0, interval=SHOWN)
    rec = recommend([*FP32, fast, shown], **RULES)
    assert rec.system == "shown" and rec.throughput.system == "shown"
    assert rec.verdicts == {"fast-unsure": "inconclusive", "shown": "non-inferior"} and rec.margin == pytest.approx(0.01 * 0.9)
    assert "the only one shown non-inferior to fp32 at the 1 % margin" in rec.sentence
    assert "above −0.90 points" in rec.sentence and "not shown non-inferior: fast-unsure (inconclusive)" in rec.sentence
    # Without intervals (results from before the verdicts) the faster one wins, as before.
    plain = [*FP32, fast.model_copy(update={"difference_ci95": None}), shown.model_copy(update={"difference_ci95": None})]
    rec = recommend(plain, **RULES)
    assert rec.system == "fast-unsure" and "non-inferior" not in rec.sentence and rec.verdicts == {}


def test_when_none_is_non_inferior_the_sentence_says_the_choice_rests_on_counts():
    rec = recommend(
        [*FP32, candidate("a", 899, 0.995, p50=1.0, interval=UNSURE), candidate("b", 898, 0.995, p50=2.0, interval=UNSURE)], **RULES
    )
    assert rec.system == "a"
    assert (
        "none of those compared with fp32 is shown non-inferior to fp32 at the 1 % margin" in rec.sentence
        and "point counts alone" in rec.sentence
    )


def test_non_inferiority_does_not_rescue_a_system_the_rules_exclude():
    """A preference, not a rule: the floor and the agreement rule still apply first."""
    rec = recommend(
        [*FP32, candidate("disagrees", 899, 0.97, p50=1.0, interval=SHOWN), candidate("ok", 899, 0.995, p50=2.0, interval=UNSURE)], **RULES
    )
    assert rec.system == "ok" and "disagrees" in rec.excluded
    assert recommend([*FP32, candidate("worse", 891, 0.99, p50=1.0, interval=WORSE)], **RULES).verdicts == {"worse": "inferior"}


def test_candidate_scores_carry_only_the_paired_interval():
    """A stored bootstrap interval (older results) is not judged; a Newcombe one is."""
    from sst2bench.noninferiority import NEWCOMBE
    from sst2bench.results import Comparison, SystemAccuracy

    def scored(name, method):
        vs = Comparison(
            n=1000,
            baseline_correct=900,
            candidate_correct=899,
            difference_examples=-1,
            difference=-0.001,
            difference_ci95=UNSURE,
            relative_change=-1 / 900,
            only_baseline_correct=1,
            only_candidate_correct=0,
            mcnemar_exact_p=1.0,
            agreement=0.999,
            disagreements=[],
            **({"difference_ci95_method": method} if method else {}),
        )
        zero = [[0, 0], [0, 0]]
        return SystemAccuracy(
            system=name, family="int8", n=1000, correct=899, accuracy=0.899, accuracy_pct=89.9, accuracy_ci95=[0.8, 0.9], macro_f1=0,
            precision=0, recall=0, confusion_matrix=zero, confusion_matrix_axes="", seconds=0, predictions="", vs_fp32=vs,
        )  # fmt: skip

    scores = candidate_scores({"new": scored("new", NEWCOMBE), "old": scored("old", None)}, {}, {})
    assert {c.system: c.difference_ci95 for c in scores} == {"new": UNSURE, "old": None}


def test_among_several_non_inferior_the_fastest():
    shown = [candidate("slow-shown", 899, 0.995, p50=3.0, interval=SHOWN), candidate("quick-shown", 895, 0.995, p50=2.0, interval=SHOWN)]
    rec = recommend([*FP32, candidate("fast-unsure", 899, 0.995, p50=1.0, interval=UNSURE), *shown], **RULES)
    assert rec.system == "quick-shown" and "the fastest of the 2 shown non-inferior" in rec.sentence


def test_an_fp32_rerun_that_never_flips_is_not_preferred_over_an_inconclusive_int8_system():
    """fp32 ONNX Runtime agrees with fp32 PyTorch everywhere, so its interval is always "non-inferior":
    the preference is among int8 systems, and with none shown the sentence says so."""
    rerun = candidate("fp32-ort", 900, 1.0, 5.0, 300.0, "fp32", interval=SHOWN)
    rec = recommend([FP32[0], rerun, candidate("int8", 899, 0.995, p50=2.0, samples=400.0, interval=UNSURE)], **RULES)
    assert rec.system == "int8" and rec.throughput.system == "int8" and "fp32-ort" not in rec.verdicts
    assert "point counts alone" in rec.sentence


def test_speed_ties_when_per_round_ranges_overlap_go_to_the_more_accurate():
    """Per-round p50s that overlap cannot rank two systems by speed: the more accurate one is chosen
    and the sentence says why; apart, the faster one wins as before."""
    fast = candidate("fast", 893, 0.995, p50=2.0, rounds=(1.9, 2.0, 2.3))
    accurate = candidate("accurate", 899, 0.995, p50=2.1, rounds=(2.2, 2.1, 2.0))
    rec = recommend([*FP32, fast, accurate], **RULES)
    assert rec.system == "accurate" and "tied on speed with fast (their per-round p50 ranges overlap)" in rec.sentence
    assert "the fastest (up to that tie) of" in rec.sentence  # not called the fastest outright
    apart = candidate("accurate", 899, 0.995, p50=2.6, rounds=(2.5, 2.6, 2.7))
    rec = recommend([*FP32, fast, apart], **RULES)
    assert rec.system == "fast" and "tied" not in rec.sentence and "up to that tie" not in rec.sentence


def test_candidates_take_the_median_of_the_per_round_p50s():
    from .test_noninferiority import scored

    scores = candidate_scores({"a": scored("a", 900, None)}, {"a": [3.0, 1.0, 2.5]}, {})
    assert scores[0].p50_ms_batch1_1thread == 2.5 and scores[0].round_p50_ms == [3.0, 1.0, 2.5]
