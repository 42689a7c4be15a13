import json
import time

import numpy as np
import pytest

from sst2bench.errors import UserError
from sst2bench.latency import (
    LatencyConfig,
    TokenizeTimer,
    Worker,
    current_rss_mib,
    rotated,
    sample_texts,
    summarize,
    supported_percentiles,
    sweep,
    time_calls,
)
from sst2bench.results.latency import LatencyMeasurement, LatencyResult, LatencyStats, ratio_summary
from sst2bench.systems import SystemSpec

from .conftest import measurement


def test_stats_match_numpy():
    durations = [1_000_000 * x for x in (5, 1, 3, 2, 4, 10, 6, 7, 8, 9)]
    stats = LatencyStats.from_ns(durations, batch_size=8)
    ms = np.array(durations) / 1e6
    assert stats.count == 10 and stats.mean_ms == pytest.approx(ms.mean())
    assert stats.p50_ms == pytest.approx(np.percentile(ms, 50)) and stats.p99_ms == pytest.approx(np.percentile(ms, 99))
    assert stats.samples_per_second == pytest.approx(8 * 1000 / ms.mean())


def test_time_calls_respects_warmup_iterations_and_batches():
    seen = []
    durations, tokenize = time_calls(seen.append, [f"s{i}" for i in range(10)], batch_size=4, warmup=2, iterations=5, duration_s=60)
    assert len(durations) == 5 and len(seen) == 7 and tokenize == [0] * 5
    assert all(len(batch) == 4 for batch in seen)


def test_time_calls_stops_at_the_duration():
    durations, _ = time_calls(lambda batch: time.sleep(0.02), ["a", "b"], 1, warmup=0, iterations=1000, duration_s=0.1)
    assert 3 <= len(durations) < 20


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
    durations, tokenize = time_calls(system.predict, ["a"], 1, warmup=1, iterations=3, duration_s=60, tokenizer=timer)
    assert all(0.01e9 <= t < d for t, d in zip(tokenize, durations))
    assert all(d - t >= 0.02e9 for t, d in zip(tokenize, durations))


def test_samples_are_seeded_and_bounded():
    sentences = [f"s{i}" for i in range(100)]
    assert sample_texts(sentences, 10, seed=1) == sample_texts(sentences, 10, seed=1)
    assert sample_texts(sentences, 10, seed=1) != sample_texts(sentences, 10, seed=2)
    with pytest.raises(UserError):
        sample_texts(sentences, 101, seed=0)


def test_percentiles_need_enough_calls():
    # q^n <= 2.5 %: p90 needs 36 calls, p95 72, p99 367.
    assert supported_percentiles(35, 0.95) == [50]
    assert supported_percentiles(40, 0.95) == [50, 90]
    assert supported_percentiles(200, 0.95) == [50, 90, 95]
    assert supported_percentiles(400, 0.95) == [50, 90, 95, 99]
    assert supported_percentiles(5, 0.95) == []
    assert supported_percentiles(50, 0.95) == [50, 90] and supported_percentiles(50, 0.8) == [50, 90, 95]  # the confidence acts


def test_config_rejects_bad_rounds_and_confidence():
    with pytest.raises(UserError):
        LatencyConfig(rounds=0)
    with pytest.raises(UserError):
        LatencyConfig(percentile_confidence=1.0)
    assert LatencyConfig(iterations=7, batched_iterations=3).calls(1) == 7 and LatencyConfig(batched_iterations=3).calls(8) == 3


class FakeWorker:
    """Records every round command, in order; answers with rows whose p50 is the system's index + 1."""

    log: list = []
    closed = 0

    def __init__(self, job):
        self.job = job
        self.started = True

    def measure(self, round_index, settings, warmup, duration_s):
        FakeWorker.log.append((round_index, self.job["spec"]["name"], self.job["threads"], [s["batch_size"] for s in settings]))
        return [
            {
                "round": round_index,
                "system": self.job["spec"]["name"],
                "family": self.job["spec"]["family"],
                "threads": self.job["threads"],
                "batch_size": s["batch_size"],
                "padding": self.job["padding"],
                "durations_ns": [1_000_000] * s["iterations"],
                "tokenize_ns": [200_000] * s["iterations"],
                "rss_shared_libraries_mib": 200.0,
                "rss_before_load_mib": 100.0,
                "rss_after_load_mib": 150.0,
                "rss_after_calls_mib": 160.0,
                "load_seconds": 0.1,
                "thread_settings": {},
            }
            for s in settings
        ]

    def close(self, check=True):
        FakeWorker.closed += 1


SPECS = [SystemSpec(name, "onnxruntime", name, "int8") for name in ("a", "b", "c")]


def test_rounds_interleave_and_rotate(tmp_path):
    FakeWorker.log = []
    settings = LatencyConfig(batch_sizes=[1], paddings=["dynamic"], threads=[1], samples=1, rounds=3, iterations=2)
    rows = sweep(SPECS, settings, ["x"], tmp_path / "p.jsonl", progress=False, start_worker=FakeWorker)
    assert [name for _, name, _, _ in FakeWorker.log] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert [r for r, *_ in FakeWorker.log] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert len(rows) == 9 and rotated([], 3) == []


def test_a_failing_worker_ends_the_others_of_its_phase(tmp_path):
    class Failing(FakeWorker):
        def measure(self, round_index, settings, warmup, duration_s):
            if self.job["spec"]["name"] == "b":
                raise RuntimeError("latency worker for b stopped")
            return super().measure(round_index, settings, warmup, duration_s)

    FakeWorker.log, FakeWorker.closed = [], 0
    settings = LatencyConfig(batch_sizes=[1], paddings=["dynamic"], threads=[1], samples=1, rounds=2, iterations=1)
    with pytest.raises(RuntimeError, match="for b"):
        sweep(SPECS, settings, ["x"], tmp_path / "p.jsonl", progress=False, start_worker=Failing)
    assert FakeWorker.closed == 3 and len((tmp_path / "p.jsonl").read_text().splitlines()) == 1  # a's row kept


def test_interrupted_sweep_resumes_per_round_system_and_setting(tmp_path):
    FakeWorker.log = []
    settings = LatencyConfig(batch_sizes=[1, 8], paddings=["dynamic"], threads=[1], samples=8, rounds=2, iterations=2, batched_iterations=1)
    partial = tmp_path / "p.jsonl"
    full = sweep(SPECS, settings, ["x"] * 8, partial, progress=False, start_worker=FakeWorker)
    # Interrupted: keep all but two rows (round 1 of c at batch 8, round 0 of a at batch 1).
    kept = [r for r in full if (r["round"], r["system"], r["batch_size"]) not in {(1, "c", 8), (0, "a", 1)}]
    partial.write_text("".join(json.dumps(r) + "\n" for r in kept))
    FakeWorker.log = []
    again = sweep(SPECS, settings, ["x"] * 8, partial, progress=False, start_worker=FakeWorker)
    assert sorted(FakeWorker.log) == [(0, "a", 1, [1]), (1, "c", 1, [8])]
    assert len(again) == len(full) == len(partial.read_text().splitlines())


def test_summary_pools_rounds_and_splits_the_forward_pass(tmp_path):
    FakeWorker.log = []
    settings = LatencyConfig(batch_sizes=[1], paddings=["dynamic"], threads=[1], samples=1, rounds=4, iterations=10)
    rows = sweep(SPECS[:1], settings, ["x"], tmp_path / "p.jsonl", progress=False, start_worker=FakeWorker)
    (summary,) = summarize(rows, 0.95)
    pooled = LatencyMeasurement(**summary)
    assert pooled.count == 40 and pooled.rounds == [0, 1, 2, 3] and pooled.supported_percentiles == [50, 90]
    assert pooled.forward_p50_ms == pytest.approx(0.8) and pooled.tokenize_p50_ms == pytest.approx(0.2)
    assert pooled.rss_added_after_load_mib == 50 and pooled.rss_added_after_calls_mib == 60


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


def test_real_worker_pins_every_pool_and_measures_memory(tiny_model_dir):
    job = {
        "spec": {"name": "tiny", "backend": "torch", "path": str(tiny_model_dir), "family": "fp32"},
        "threads": 2,
        "padding": "dynamic",
        "batch_sizes": [1, 2],
        "max_length": 16,
        "texts": ["good film .", "dull mess", "fun !"],
    }
    worker = Worker(job)
    try:
        rows = worker.measure(0, [{"batch_size": 1, "iterations": 3}, {"batch_size": 2, "iterations": 2}], warmup=1, duration_s=5.0)
    finally:
        worker.close()
    assert [(r["batch_size"], len(r["durations_ns"]), len(r["tokenize_ns"])) for r in rows] == [(1, 3, 3), (2, 2, 2)]
    assert all(0 < t < d for r in rows for t, d in zip(r["tokenize_ns"], r["durations_ns"]))
    expected = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "RAYON_NUM_THREADS": "2"}
    expected |= {"TOKENIZERS_PARALLELISM": "false", "torch_intra_op": 2, "torch_inter_op": 1}
    assert rows[0]["thread_settings"] == expected
    # transformers (with torch) is imported before the baseline and counted apart; the model still adds to it.
    assert rows[0]["rss_shared_libraries_mib"] > 50 and rows[0]["rss_after_load_mib"] - rows[0]["rss_before_load_mib"] > 0
    assert rows[0]["rss_after_calls_mib"] >= rows[0]["rss_before_load_mib"]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_runtime_threads_are_read_back_from_the_worker(signal_model, backend):
    pytest.importorskip(backend)
    job = {
        "spec": {"name": "signal", "backend": backend, "path": str(signal_model.onnx_dir), "family": "fp32"},
        "threads": 2,
        "padding": "dynamic",
        "batch_sizes": [1],
        "max_length": 16,
        "texts": ["good film .", "dull mess"],
    }
    worker = Worker(job)
    (row,) = worker.measure(0, [{"batch_size": 1, "iterations": 2}], warmup=0, duration_s=5.0)
    worker.close()
    settings = row["thread_settings"]
    assert settings["OMP_NUM_THREADS"] == "2"
    if backend == "onnxruntime":
        assert settings["ort_intra_op"] == 2 and settings["ort_inter_op"] == 1  # ORT's own default is 0 (all cores)
    else:
        assert str(settings["runtime_INFERENCE_NUM_THREADS"]) == "2"


def test_a_failing_worker_reports_its_error(tmp_path):
    job = {"spec": {"name": "nope", "backend": "onnxruntime", "path": str(tmp_path), "family": "fp32"}, "threads": 1}
    job |= {"padding": "dynamic", "batch_sizes": [1], "max_length": 16, "texts": ["a"]}
    with pytest.raises(RuntimeError, match="nope"):
        Worker(job)
