"""The recommendation: the fastest system that keeps fp32's count and agrees with it, from fabricated scores."""

from sst2bench.recommend import CandidateScore, needed_correct, recommend

RULES = {"min_relative_accuracy": 0.99, "min_agreement": 0.99, "chosen_on": "the tuning split", "reported_on": "validation"}


def candidate(system, correct, agreement, p50=None, samples=None, family="int8"):
    return CandidateScore(
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
