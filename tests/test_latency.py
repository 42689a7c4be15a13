import io
import json
import sys
import time

import numpy as np
import pytest

from sst2bench.errors import UserError
from sst2bench.latency import (
    BATCHINGS,
    LatencyConfig,
    TokenizeTimer,
    Worker,
    batch_plan,
    call_order,
    current_rss_mib,
    percentile_interval,
    sample_texts,
    summarize,
    supported_percentiles,
    sweep,
    system_order,
    time_calls,
    token_lengths,
    worker,
    worker_job,
)
from sst2bench.results.latency import LatencyMeasurement, LatencyResult, LatencyStats, ratio_summary
from sst2bench.systems import SystemSpec
from sst2bench.systems.base import register_backend

from .conftest import measurement


def test_stats_match_numpy():
    durations = [1_000_000 * x for x in (5, 1, 3, 2, 4, 10, 6, 7, 8, 9)]
    stats = LatencyStats.from_ns(durations, batch_size=8)
    ms = np.array(durations) / 1e6
    assert stats.count == 10 and stats.mean_ms == pytest.approx(ms.mean())
    assert stats.p50_ms == pytest.approx(np.percentile(ms, 50)) and stats.p99_ms == pytest.approx(np.percentile(ms, 99))
    assert stats.samples_per_second == pytest.approx(8 * 1000 / ms.mean())


def test_time_calls_respects_warmup_passes_and_batches():
    seen = []
    batches = [["a", "b"], ["c", "d"], ["e", "f"]]
    durations, tokenize, timed = time_calls(seen.append, batches, [[2, 0, 1], [1, 2, 0]], warmup=2, duration_s=60)
    assert len(durations) == 6 and tokenize == [0] * 6 and timed == [2, 0, 1, 1, 2, 0]
    assert seen == [batches[2], batches[0]] + [batches[i] for i in timed]  # warm-up takes the round's first batches


def test_time_calls_stops_only_after_a_whole_pass():
    """The deadline never cuts a pass: every batch stays equally often timed."""
    seen = []
    _, _, timed = time_calls(seen.append, [["a"], ["b"], ["c"]], [[1, 2, 0], [0, 2, 1], [2, 1, 0]], warmup=0, duration_s=0)
    assert timed == [1, 2, 0] and len(seen) == 3


def test_tokenizer_time_is_measured_inside_each_call():
    class Slow:
        def encode(self, texts):
            time.sleep(0.01)
            return texts

        def predict(self, texts):
            self.encode(texts)
            time.sleep(0.02)

    system = Slow()
    timer = system.encode = TokenizeTimer(system.encode)
    durations, tokenize, _ = time_calls(system.predict, [["a"]], [[0, 0, 0]], warmup=1, duration_s=60, tokenizer=timer)
    assert all(0.01e9 <= t < d for t, d in zip(tokenize, durations))
    assert all(d - t >= 0.02e9 for t, d in zip(tokenize, durations))


def test_samples_are_seeded_and_bounded():
    sentences = [f"s{i}" for i in range(100)]
    assert sample_texts(sentences, 10, seed=1) == sample_texts(sentences, 10, seed=1)
    assert sample_texts(sentences, 10, seed=1) != sample_texts(sentences, 10, seed=2)
    with pytest.raises(UserError):
        sample_texts(sentences, 101, seed=0)


def test_percentiles_need_eight_calls_beyond_them_and_an_interval():
    """p99 from fewer than 800 calls is the slowest few calls: refused."""
    assert supported_percentiles(15, 0.95) == [] and supported_percentiles(16, 0.95) == [50]
    assert supported_percentiles(79, 0.95) == [50] and supported_percentiles(80, 0.95) == [50, 90]
    assert supported_percentiles(159, 0.95) == [50, 90] and supported_percentiles(160, 0.95) == [50, 90, 95]
    assert supported_percentiles(400, 0.95) == supported_percentiles(799, 0.95) == [50, 90, 95]
    assert supported_percentiles(800, 0.95) == [50, 90, 95, 99]
    # The interval rule still acts where it is the stricter one (q^n <= 2.5 %: p90 needs 36 calls).
    assert supported_percentiles(30, 0.95, tail_calls=1) == [50] and supported_percentiles(30, 0.8, tail_calls=1) == [50, 90]


def test_percentile_interval_is_the_order_statistic_interval():
    """n = 100: the 95 % interval of the median runs from the 40th to the 61st value (binomial tables)."""
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert percentile_interval(values, 50, 0.95) == (40.0, 61.0)
    low, high = percentile_interval(values, 90, 0.95)
    assert low < np.percentile(values, 90) < high
    assert percentile_interval(values[:20], 99, 0.95) is None


def test_config_rejects_bad_rounds_and_confidence():
    with pytest.raises(UserError):
        LatencyConfig(rounds=0)
    with pytest.raises(UserError):
        LatencyConfig(percentile_confidence=1.0)
    assert LatencyConfig(iterations=7, batched_iterations=3).calls(1) == 7 and LatencyConfig(batched_iterations=3).calls(8) == 3
    with pytest.raises(UserError, match="batching"):
        LatencyConfig(batching="sorted")
    assert LatencyConfig().batching == "length-bucketed" and LatencyConfig().warmup_pass


LENGTHS = [5, 1, 4, 2, 3, 6, 1, 2, 9, 3, 7, 8]


def test_bucketed_batches_are_length_sorted_neighbours():
    """Each bucketed batch holds neighbours in length order; sample order gives other batches."""
    bucketed = batch_plan(LENGTHS, 4, "length-bucketed", seed=0)
    assert sorted(i for batch in bucketed for i in batch) == list(range(12))
    spans = [(min(LENGTHS[i] for i in batch), max(LENGTHS[i] for i in batch)) for batch in bucketed]
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))
    assert batch_plan(LENGTHS, 4, "sample-order", seed=0) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    padded = {rule: sum(4 * max(LENGTHS[i] for i in b) for b in batch_plan(LENGTHS, 4, rule, 0)) for rule in BATCHINGS}
    assert padded["length-bucketed"] < padded["sample-order"]
    assert sorted(batch_plan(LENGTHS, 1, "length-bucketed", 0)) == batch_plan(LENGTHS, 1, "sample-order", 0)


def test_a_sample_not_a_multiple_of_the_batch_leaves_out_seeded_random_sentences():
    """Leaving out the tail of the sorted sample would drop the longest sentences: the left-out ones are drawn."""
    kept = {seed: {i for b in batch_plan(LENGTHS, 5, "length-bucketed", seed) for i in b} for seed in range(6)}
    assert all(len(k) == 10 for k in kept.values()) and kept[0] == {i for b in batch_plan(LENGTHS, 5, "length-bucketed", 0) for i in b}
    assert len({frozenset(set(range(12)) - k) for k in kept.values()}) > 1
    with pytest.raises(UserError):
        batch_plan(LENGTHS[:3], 4, "length-bucketed", 0)


def test_call_order_is_seeded_random_per_round_and_every_batch_equally_often():
    rounds = [call_order(8, 24, seed=3, round_index=r, setting="length-bucketed:4") for r in range(4)]
    assert all(len(passes) == 3 and all(sorted(one) == list(range(8)) for one in passes) for passes in rounds)
    assert len({tuple(map(tuple, passes)) for passes in rounds}) == 4  # a new order every round
    assert rounds[1] == call_order(8, 24, seed=3, round_index=1, setting="length-bucketed:4")  # reproducible
    assert rounds[1] != call_order(8, 24, seed=4, round_index=1, setting="length-bucketed:4")
    assert [len(call_order(8, calls, 0, 0, "x")) for calls in (1, 8, 15, 16)] == [1, 1, 1, 2]  # whole passes, at least one


def test_system_order_is_a_seeded_permutation_drawn_each_round():
    names = [f"s{i}" for i in range(5)]
    orders = [system_order(names, r, seed=0) for r in range(6)]
    assert all(sorted(order) == names for order in orders) and orders == [system_order(names, r, seed=0) for r in range(6)]
    firsts = {order[0] for order in orders}
    predecessors = {order[order.index("s2") - 1] if order.index("s2") else None for order in orders}
    assert len(firsts) > 1 and len(predecessors) > 1 and orders != [system_order(names, r, seed=1) for r in range(6)]


class FakeWorker:
    """Records every job and round command, in order; answers with one row per setting, each call 1 ms."""

    log: list = []
    jobs: list = []
    commands: list = []
    closed = 0

    def __init__(self, job):
        self.job = job
        FakeWorker.jobs.append(job)

    def measure(self, round_index, settings, warmup, duration_s):
        FakeWorker.log.append((round_index, self.job["spec"]["name"], self.job["threads"], [s["batch_size"] for s in settings]))
        FakeWorker.commands.append((round_index, self.job["spec"]["name"], settings))
        rows = []
        for s in settings:
            timed = [i for one_pass in s["passes"] for i in one_pass]
            rows.append(
                {
                    "round": round_index,
                    "system": self.job["spec"]["name"],
                    "family": self.job["spec"]["family"],
                    "threads": self.job["threads"],
                    "batch_size": s["batch_size"],
                    "padding": self.job["padding"],
                    "batching": s["batching"],
                    "durations_ns": [1_000_000] * len(timed),
                    "tokenize_ns": [200_000] * len(timed),
                    "batches_timed": timed,
                    "rss_shared_libraries_mib": 200.0,
                    "rss_before_load_mib": 100.0,
                    "rss_after_load_mib": 150.0,
                    "rss_after_calls_mib": 160.0,
                    "load_seconds": 0.1,
                    "warmup_pass_calls": 3,
                    "warmup_pass_seconds": 0.5,
                    "thread_settings": {},
                }
            )
        return rows

    def close(self, check=True):
        FakeWorker.closed += 1

    @classmethod
    def reset(cls):
        cls.log, cls.jobs, cls.commands, cls.closed = [], [], [], 0


SPECS = [SystemSpec(name, "onnxruntime", name, "int8") for name in ("a", "b", "c")]


def test_rounds_interleave_in_a_seeded_random_order_of_systems(tmp_path):
    """Each round asks every system once, in a permutation drawn for that round and recorded in the rows."""
    specs = [SystemSpec(f"s{i}", "onnxruntime", f"s{i}", "int8") for i in range(5)]
    settings = LatencyConfig(batch_sizes=[1], paddings=["dynamic"], threads=[1], samples=1, rounds=6, iterations=2, seed=7)
    FakeWorker.reset()
    rows = sweep(specs, settings, ["x"], tmp_path / "p.jsonl", progress=False, start_worker=FakeWorker)
    orders = [[name for r, name, _, _ in FakeWorker.log if r == round_index] for round_index in range(6)]
    assert all(sorted(order) == [s.name for s in specs] for order in orders)
    assert orders == [system_order([s.name for s in specs], r, seed=7) for r in range(6)]
    assert len({order[0] for order in orders}) > 1 and len({tuple(order) for order in orders}) == 6
    assert all(row["position"] == orders[row["round"]].index(row["system"]) for row in rows)
    (summary, *_) = summarize(rows, 0.95)
    assert summary["round_positions"] == [orders[r].index(summary["system"]) for r in range(6)]
    FakeWorker.reset()
    sweep(specs, settings, ["x"], tmp_path / "again.jsonl", progress=False, start_worker=FakeWorker)
    assert [[n for r, n, _, _ in FakeWorker.log if r == i] for i in range(6)] == orders  # reproducible from the seed


def test_sweep_times_every_batch_equally_often_in_a_new_order_each_round(tmp_path):
    FakeWorker.reset()
    texts = [f"t{i}" for i in range(16)]
    settings = LatencyConfig(
        batch_sizes=[1, 4], paddings=["dynamic"], threads=[1], samples=16, rounds=3, iterations=32, batched_iterations=8
    )
    sweep(SPECS, settings, texts, tmp_path / "p.jsonl", progress=False, start_worker=FakeWorker, lengths=list(range(16)))
    for batch_size, batches in ((1, 16), (4, 4)):
        per_round = {}
        for round_index, _, commanded in FakeWorker.commands:
            (setting,) = [s for s in commanded if s["batch_size"] == batch_size]
            timed = [i for one_pass in setting["passes"] for i in one_pass]
            assert sorted(timed) == sorted(list(range(batches)) * 2)  # two whole passes: each batch twice
            per_round.setdefault(round_index, set()).add(tuple(timed))
        assert all(len(orders) == 1 for orders in per_round.values())  # the same order for every system in a round
        assert len({orders.pop() for orders in per_round.values()}) == 3  # a new order every round


def test_the_batching_switch_changes_the_batches_workers_are_given(tmp_path):
    """The plans a worker warms and times are length-bucketed by default and in sample order when switched."""
    texts = [f"t{i}" for i in range(12)]
    plans = {}
    for rule in BATCHINGS:
        FakeWorker.reset()
        settings = LatencyConfig(batch_sizes=[1, 4], paddings=["dynamic"], threads=[1], samples=12, rounds=1, batching=rule)
        rows = sweep(SPECS[:1], settings, texts, tmp_path / f"{rule}.jsonl", progress=False, start_worker=FakeWorker, lengths=LENGTHS)
        (job,) = FakeWorker.jobs
        plans[rule] = {(p["batching"], p["batch_size"]): p["batches"] for p in job["plans"]}
        assert set(plans[rule]) == {(rule, 1), (rule, 4)} and {r["batching"] for r in rows} == {rule}
    assert plans["length-bucketed"]["length-bucketed", 4] == batch_plan(LENGTHS, 4, "length-bucketed", 0)
    assert plans["sample-order"]["sample-order", 4] == batch_plan(LENGTHS, 4, "sample-order", 0)
    assert plans["length-bucketed"]["length-bucketed", 4] != plans["sample-order"]["sample-order", 4]
    with pytest.raises(ValueError, match="token lengths"):
        sweep(SPECS, LatencyConfig(batch_sizes=[1, 4], samples=12), texts, tmp_path / "x.jsonl", progress=False, start_worker=FakeWorker)


def test_a_longer_draw_starts_with_the_shorter_one():
    sentences = [f"s{i}" for i in range(872)]  # random.sample changes method between 64 and 256 draws of 872
    assert sample_texts(sentences, 256, seed=0)[:64] == sample_texts(sentences, 64, seed=0)
    assert sample_texts(sentences, 64, seed=0) != sample_texts(sentences, 64, seed=1)


def test_batched_samples_give_larger_batches_a_longer_draw_whose_start_is_batch_ones(tmp_path):
    """batch 1 times the first ``samples`` sentences; batch 4 buckets all ``batched_samples`` of them."""
    texts, lengths = [f"t{i}" for i in range(24)], [5, 9, 2, 7] * 6
    FakeWorker.reset()
    settings = LatencyConfig(batch_sizes=[1, 4], paddings=["dynamic"], threads=[1], samples=8, batched_samples=24, rounds=1)
    sweep(SPECS[:1], settings, texts, tmp_path / "p.jsonl", progress=False, start_worker=FakeWorker, lengths=lengths)
    (job,) = FakeWorker.jobs
    plans = {p["batch_size"]: p["batches"] for p in job["plans"]}
    assert sorted(i for batch in plans[1] for i in batch) == list(range(8))
    assert sorted(i for batch in plans[4] for i in batch) == list(range(24))
    assert plans[4] == batch_plan(lengths, 4, "length-bucketed", 0)
    FakeWorker.reset()
    plain = LatencyConfig(batch_sizes=[1, 4], paddings=["dynamic"], threads=[1], samples=8, rounds=1)
    sweep(SPECS[:1], plain, texts[:8], tmp_path / "q.jsonl", progress=False, start_worker=FakeWorker, lengths=lengths[:8])
    (job,) = FakeWorker.jobs
    assert sorted(i for p in job["plans"] if p["batch_size"] == 4 for batch in p["batches"] for i in batch) == list(range(8))
    assert (plain.sample_size, settings.sample_size) == (8, 24)
    with pytest.raises(UserError, match="batched_samples must be 0"):
        LatencyConfig(samples=64, batched_samples=32)
    with pytest.raises(ValueError, match="8 texts for settings that time 24"):
        sweep(SPECS[:1], settings, texts[:8], tmp_path / "r.jsonl", progress=False, start_worker=FakeWorker, lengths=lengths[:8])


def test_a_sweep_can_time_both_batchings_side_by_side(tmp_path):
    FakeWorker.reset()
    settings = LatencyConfig(batch_sizes=[4], paddings=["dynamic"], threads=[1], samples=12, rounds=2, batched_iterations=3)
    rows = sweep(SPECS[:2], settings, [f"t{i}" for i in range(12)], tmp_path / "p.jsonl", False, FakeWorker, LENGTHS, list(BATCHINGS))
    summary = summarize(rows, 0.95)
    assert sorted((m["system"], m["batching"]) for m in summary) == sorted((s, b) for s in "ab" for b in BATCHINGS)
    measured = LatencyResult(results=summary)
    assert measured.measurement("a", batch_size=4, batching="sample-order").batching == "sample-order"
    assert set(measured.table()["batching"]) == set(BATCHINGS)


def test_a_failing_worker_ends_the_others_of_its_phase(tmp_path):
    class Failing(FakeWorker):
        def measure(self, round_index, settings, warmup, duration_s):
            if self.job["spec"]["name"] == "b":
                raise RuntimeError("latency worker for b stopped")
            return super().measure(round_index, settings, warmup, duration_s)

    FakeWorker.reset()
    settings = LatencyConfig(batch_sizes=[1], paddings=["dynamic"], threads=[1], samples=1, rounds=2, iterations=1)
    with pytest.raises(RuntimeError, match="for b"):
        sweep(SPECS, settings, ["x"], tmp_path / "p.jsonl", progress=False, start_worker=Failing)
    assert FakeWorker.closed == 3 and len((tmp_path / "p.jsonl").read_text().splitlines()) == 1  # a's row kept


def test_interrupted_sweep_resumes_per_round_system_and_setting(tmp_path):
    FakeWorker.reset()
    settings = LatencyConfig(batch_sizes=[1, 8], paddings=["dynamic"], threads=[1], samples=8, rounds=2, iterations=2, batched_iterations=1)
    partial = tmp_path / "p.jsonl"
    full = sweep(SPECS, settings, ["x"] * 8, partial, progress=False, start_worker=FakeWorker, lengths=[1] * 8)
    # Interrupted: keep all but two rows (round 1 of c at batch 8, round 0 of a at batch 1).
    kept = [r for r in full if (r["round"], r["system"], r["batch_size"]) not in {(1, "c", 8), (0, "a", 1)}]
    partial.write_text("".join(json.dumps(r) + "\n" for r in kept))
    FakeWorker.reset()
    again = sweep(SPECS, settings, ["x"] * 8, partial, progress=False, start_worker=FakeWorker, lengths=[1] * 8)
    assert sorted(FakeWorker.log) == [(0, "a", 1, [1]), (1, "c", 1, [8])]
    assert len(again) == len(full) == len(partial.read_text().splitlines())


def test_summary_pools_rounds_and_splits_the_forward_pass(tmp_path):
    FakeWorker.reset()
    settings = LatencyConfig(batch_sizes=[1], paddings=["dynamic"], threads=[1], samples=1, rounds=4, iterations=10)
    rows = sweep(SPECS[:1], settings, ["x"], tmp_path / "p.jsonl", progress=False, start_worker=FakeWorker)
    (summary,) = summarize(rows, 0.95)
    pooled = LatencyMeasurement(**summary)
    assert pooled.count == 40 and pooled.rounds == [0, 1, 2, 3] and pooled.supported_percentiles == [50]
    assert pooled.percentile_intervals_ms == {"p50": [1.0, 1.0]} and pooled.interval_text(99) is None
    assert pooled.batching == "length-bucketed" and pooled.warmup_pass_calls == 3
    assert pooled.forward_p50_ms == pytest.approx(0.8) and pooled.tokenize_p50_ms == pytest.approx(0.2)
    assert pooled.rss_added_after_load_mib == 50 and pooled.rss_added_after_calls_mib == 60


def test_p99_is_refused_below_eight_hundred_calls_and_reported_with_its_interval_above():
    def rows(calls):
        durations = [int(1e6 * (1 + i % 97)) for i in range(calls)]
        return [
            {"round": 0, "system": "s", "family": "fp32", "threads": 1, "batch_size": 1, "padding": "dynamic", "durations_ns": durations}
        ]

    common = {"tokenize_ns": [], "load_seconds": 0.1, "rss_shared_libraries_mib": 0.0, "rss_before_load_mib": 1.0}
    common |= {"rss_after_load_mib": 2.0, "rss_after_calls_mib": 2.0, "thread_settings": {}}
    (few,) = summarize([{**r, **common} for r in rows(799)], 0.95)
    (enough,) = summarize([{**r, **common} for r in rows(800)], 0.95)
    assert 99 not in few["supported_percentiles"] and "p99" not in few["percentile_intervals_ms"]
    assert 99 in enough["supported_percentiles"]
    low, high = enough["percentile_intervals_ms"]["p99"]
    assert low <= enough["p99_ms"] <= high
    table = LatencyResult(results=[few, enough]).table()
    assert table["p99_ms"].isna().sum() == 1 and table["p99_interval_ms"].notna().sum() == 1


def test_ratio_summary_is_per_round_against_the_faster_baseline():
    result = LatencyResult(
        results=[
            measurement("fp32-ort", round_p50_ms=[8, 8, 8, 8, 8]),
            measurement("fp32-ort-fused", round_p50_ms=[6, 6, 9, 6, 6]),  # faster by median: chosen
            measurement("int8", round_p50_ms=[3, 2, 3, 4, 3]),
        ]
    )
    ratio = ratio_summary(result, "int8", ["fp32-ort", "fp32-ort-fused", "absent"])
    assert ratio.baseline == "fp32-ort-fused" and ratio.rounds == 5
    assert ratio.median == pytest.approx(2.0) and ratio.low == pytest.approx(1.5) and ratio.high == pytest.approx(3.0)
    assert not ratio.clears(2.0) and ratio.clears(1.5)
    assert ratio_summary(result, "int8", "fp32-ort").low == pytest.approx(2.0)
    assert ratio_summary(result, "int8", "fp32-ort", threads=2) is None


def test_current_rss_sees_an_allocation():
    before = current_rss_mib()
    block = np.ones(64 * 2**20, dtype=np.uint8)  # touched, so resident
    assert current_rss_mib() - before > 50 and block.sum() > 0


@register_backend("recording")
class RecordingSystem:
    """A system that remembers every batch it is asked, so a test sees what the worker times."""

    calls: list = []

    def __init__(self):
        self.name, self.id2label = "recording", {0: "NEGATIVE", 1: "POSITIVE"}

    @classmethod
    def from_spec(cls, spec, inference):
        return cls()

    def predict(self, texts):
        RecordingSystem.calls.append(list(texts))
        return []


def run_worker_here(job: dict, commands: list[dict], monkeypatch, capsys) -> list[dict]:
    """The worker's own code, in this process: the job and commands on stdin, its JSON lines back."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(json.dumps(line) + "\n" for line in (job, *commands))))
    capsys.readouterr()
    worker()
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def recording_job(settings: LatencyConfig, texts, lengths, batchings):
    plans = {(rule, b): batch_plan(lengths, b, rule, settings.seed) for b in settings.batch_sizes for rule in batchings}
    spec = {"name": "rec", "backend": "recording", "path": "-", "family": "fp32"}
    return worker_job(spec, 1, "dynamic", settings, texts, plans), plans


def test_the_worker_warms_every_batch_once_then_times_length_sorted_neighbours(monkeypatch, capsys):
    """Before any timed call each distinct batch (input shape) runs once; the timed calls then see the
    planned batches in the commanded order: bucketed ones are length-sorted neighbours, sample-order ones differ."""
    texts = [" ".join([f"s{i}"] + ["w"] * (n - 1)) for i, n in enumerate(LENGTHS)]  # distinct; length = word count
    settings = LatencyConfig(batch_sizes=[1, 4], samples=12, seed=0)
    job, plans = recording_job(settings, texts, LENGTHS, list(BATCHINGS))
    command = {"round": 0, "warmup": 0, "duration_s": 60.0}
    command["settings"] = [
        {"batch_size": b, "batching": rule, "passes": call_order(len(plans[rule, b]), 2 * len(plans[rule, b]), 0, 0, f"{rule}:{b}")}
        for rule, b in plans
    ]
    RecordingSystem.calls = []
    loaded, *rows, done = run_worker_here(job, [command], monkeypatch, capsys)
    distinct = {tuple(texts[i] for i in batch) for batches in plans.values() for batch in batches}
    assert loaded["event"] == "loaded" and done == {"event": "done"} and loaded["warmup_pass_calls"] == len(distinct) == 12 + 3 + 3
    assert {row["backend"] for row in rows} == {"recording"}  # what the same-runtime speed-up looks its fp32 up by
    assert {m.backend for m in map(LatencyMeasurement.model_validate, summarize(rows, 0.95))} == {"recording"}
    warm, timed = RecordingSystem.calls[: len(distinct)], RecordingSystem.calls[len(distinct) :]
    assert sorted(map(tuple, warm)) == sorted(distinct)
    seen = {}
    for row, setting in zip(rows, command["settings"]):
        assert row["batches_timed"] == [i for one_pass in setting["passes"] for i in one_pass]
        calls, timed = timed[: len(row["batches_timed"])], timed[len(row["batches_timed"]) :]
        assert calls == [[texts[i] for i in plans[row["batching"], row["batch_size"]][k]] for k in row["batches_timed"]]
        seen[row["batching"], row["batch_size"]] = {tuple(sorted(len(t.split()) for t in call)) for call in calls}
    assert timed == []
    spans = sorted((min(lengths), max(lengths)) for lengths in seen["length-bucketed", 4])
    assert len(spans) == 3 and all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))
    assert seen["length-bucketed", 4] != seen["sample-order", 4] and seen["length-bucketed", 1] == seen["sample-order", 1]


def test_the_warmup_pass_is_a_setting(monkeypatch, capsys):
    settings = LatencyConfig(batch_sizes=[1], samples=3, warmup_pass=False)
    job, plans = recording_job(settings, ["a", "b", "c"], [1, 1, 1], ["length-bucketed"])
    command = {
        "round": 0,
        "warmup": 0,
        "duration_s": 60.0,
        "settings": [{"batch_size": 1, "batching": "length-bucketed", "passes": [[2, 0, 1]]}],
    }
    RecordingSystem.calls = []
    loaded, row, _ = run_worker_here(job, [command], monkeypatch, capsys)
    assert loaded["warmup_pass_calls"] == 0 and RecordingSystem.calls == [["c"], ["a"], ["b"]] and row["batches_timed"] == [2, 0, 1]


def test_token_lengths_count_the_tokenizers_tokens(tiny_model_dir):
    assert token_lengths(["good film .", "dull"], tiny_model_dir, max_length=16) == [5, 3]  # [CLS] … [SEP]
    assert token_lengths(["good " * 40], tiny_model_dir, max_length=16) == [16]


def test_real_worker_pins_every_pool_and_measures_memory(tiny_model_dir):
    texts = ["good film .", "dull mess", "fun !"]
    settings = LatencyConfig(batch_sizes=[1, 2], samples=3, max_length=16)
    plans = {("length-bucketed", b): batch_plan([4, 4, 3], b, "length-bucketed", 0) for b in (1, 2)}
    worker = Worker(
        worker_job(
            {"name": "tiny", "backend": "torch", "path": str(tiny_model_dir), "family": "fp32"}, 2, "dynamic", settings, texts, plans
        )
    )
    try:
        commanded = [{"batch_size": 1, "batching": "length-bucketed", "passes": [[0, 1, 2]]}]
        commanded += [{"batch_size": 2, "batching": "length-bucketed", "passes": [[0], [0]]}]
        rows = worker.measure(0, commanded, warmup=1, duration_s=5.0)
    finally:
        worker.close()
    assert [(r["batch_size"], len(r["durations_ns"]), len(r["tokenize_ns"])) for r in rows] == [(1, 3, 3), (2, 2, 2)]
    assert worker.loaded["warmup_pass_calls"] == 4  # three single sentences and one pair
    assert all(0 < t < d for r in rows for t, d in zip(r["tokenize_ns"], r["durations_ns"]))
    expected = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "RAYON_NUM_THREADS": "2"}
    expected |= {"TOKENIZERS_PARALLELISM": "false", "torch_intra_op": 2, "torch_inter_op": 1}
    assert rows[0]["thread_settings"] == expected
    # transformers (with torch) is imported before the baseline and counted apart; the model still adds to it.
    assert rows[0]["rss_shared_libraries_mib"] > 50 and rows[0]["rss_after_load_mib"] - rows[0]["rss_before_load_mib"] > 0
    assert rows[0]["rss_after_calls_mib"] >= rows[0]["rss_before_load_mib"]


def one_batch_job(name, backend, path, texts, threads=2):
    plans = {("length-bucketed", 1): batch_plan([1] * len(texts), 1, "length-bucketed", 0)}
    spec = {"name": name, "backend": backend, "path": path, "family": "fp32"}
    return worker_job(spec, threads, "dynamic", LatencyConfig(batch_sizes=[1], samples=len(texts), max_length=16), texts, plans)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_runtime_threads_are_read_back_from_the_worker(signal_model, backend):
    pytest.importorskip(backend)
    worker = Worker(one_batch_job("signal", backend, str(signal_model.onnx_dir), ["good film .", "dull mess"]))
    (row,) = worker.measure(0, [{"batch_size": 1, "batching": "length-bucketed", "passes": [[0, 1]]}], warmup=0, duration_s=5.0)
    worker.close()
    settings = row["thread_settings"]
    assert settings["OMP_NUM_THREADS"] == "2"
    if backend == "onnxruntime":
        assert settings["ort_intra_op"] == 2 and settings["ort_inter_op"] == 1  # ORT's own default is 0 (all cores)
    else:
        assert str(settings["runtime_INFERENCE_NUM_THREADS"]) == "2"


def test_a_failing_worker_reports_its_error(tmp_path):
    with pytest.raises(RuntimeError, match="nope"):
        Worker(one_batch_job("nope", "onnxruntime", str(tmp_path), ["a"], threads=1))
