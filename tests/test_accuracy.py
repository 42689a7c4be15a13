import pytest
from scipy.stats import binomtest

from sst2bench.accuracy import (
    PredictionRecord,
    accuracy_report,
    compare,
    load_predictions,
    records_from,
    save_predictions,
)
from sst2bench.errors import UserError
from sst2bench.systems import Prediction


def test_accuracy_report_counts_and_confusion():
    gold = [0, 0, 0, 1, 1, 1, 1, 1]
    pred = [0, 0, 1, 1, 1, 1, 0, 1]
    report = accuracy_report(gold, pred)
    assert (report["correct"], report["n"]) == (6, 8)
    assert report["accuracy"] == 0.75
    assert report["confusion_matrix"] == [[2, 1], [1, 4]]
    assert report["precision"] == pytest.approx(4 / 5)
    assert report["recall"] == pytest.approx(4 / 5)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    low, high = report["accuracy_ci95"]
    assert 0 <= low < 0.75 < high <= 1


def test_bootstrap_interval_narrows_with_more_examples():
    small = accuracy_report([1] * 100, [1] * 90 + [0] * 10)["accuracy_ci95"]
    large = accuracy_report([1] * 1000, [1] * 900 + [0] * 100)["accuracy_ci95"]
    assert (large[1] - large[0]) < (small[1] - small[0])


def test_all_correct_does_not_print_a_zero_width_interval():
    """Resampling an all-correct split cannot vary; the count still leaves room below 100 %."""
    low, high = accuracy_report([1, 0] * 10, [1, 0] * 10)["accuracy_ci95"]
    assert low < 1.0 == high
    assert accuracy_report([1, 0] * 100, [1, 0] * 100)["accuracy_ci95"][0] > low
    low, high = accuracy_report([1, 0] * 10, [0, 1] * 10)["accuracy_ci95"]
    assert low == 0.0 < high


def records(labels, gold, start=0):
    return [PredictionRecord(start + i, g, p, 0.9, [0.1, 0.9] if p else [0.9, 0.1]) for i, (p, g) in enumerate(zip(labels, gold))]


def test_paired_comparison_mcnemar_and_disagreements():
    gold = [1] * 30
    baseline = records([1] * 30, gold)
    candidate = records([0] * 3 + [1] * 27, gold)
    result = compare(baseline, list(reversed(candidate)))  # order must not matter
    assert result["difference_examples"] == -3
    assert (result["only_baseline_correct"], result["only_candidate_correct"]) == (3, 0)
    assert result["mcnemar_exact_p"] == pytest.approx(binomtest(0, 3, 0.5).pvalue)
    assert result["agreement"] == pytest.approx(27 / 30)
    assert [d["idx"] for d in result["disagreements"]] == [0, 1, 2]
    low, high = result["difference_ci95"]
    assert low < -0.1 < 0 < high  # 3 flips one way: neither the interval nor McNemar excludes no difference


def test_identical_systems_get_a_difference_interval_of_real_width():
    """No example on which the two differ: the paired bootstrap printed [0, 0]; the paired interval does not."""
    gold = [1, 0] * 50
    labels = [1] * 70 + [0] * 30
    result = compare(records(labels, gold), records(labels, gold))
    low, high = result["difference_ci95"]
    assert result["difference"] == 0 and low < 0 < high
    assert 0 < result["detectable_difference"] < 1


def test_comparison_refuses_different_examples():
    with pytest.raises(UserError, match="same examples"):
        compare(records([1, 1], [1, 1]), records([1, 1], [1, 1], start=5))
    with pytest.raises(UserError, match="gold labels"):
        compare(records([1, 1], [1, 1]), records([1, 1], [1, 0]))


def test_predictions_round_trip(tmp_path):
    recs = records_from([4, 7], [1, 0], [Prediction(1, 0.8, (0.2, 0.8)), Prediction(1, 0.6, (0.4, 0.6))])
    save_predictions(recs, tmp_path / "p.jsonl")
    assert load_predictions(tmp_path / "p.jsonl") == recs
    (tmp_path / "bad.jsonl").write_text('{"idx": 1}\n')
    with pytest.raises(UserError, match=r"bad\.jsonl:1"):
        load_predictions(tmp_path / "bad.jsonl")
