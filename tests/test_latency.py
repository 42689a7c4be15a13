import json

import numpy as np
import pytest

from sst2bench.config import LatencyConfig
from sst2bench.errors import UserError
from sst2bench.latency import LatencyStats, run_worker, sample_texts, speedups, sweep, time_calls
from sst2bench.systems import SystemSpec


def test_stats_match_numpy():
    durations = [1_000_000 * x for x in (5, 1, 3, 2, 4, 10, 6, 7, 8, 9)]
    stats = LatencyStats.from_ns(durations, batch_size=8)
    ms = np.array(durations) / 1e6
    assert stats.count == 10 and stats.mean_ms == pytest.approx(ms.mean())
    assert stats.p50_ms == pytest.approx(np.percentile(ms, 50)) and stats.p99_ms == pytest.approx(np.percentile(ms, 99))
    assert stats.stdev_ms == pytest.approx(ms.std(ddof=1))
    assert stats.samples_per_second == pytest.approx(8 * 1000 / ms.mean())


def test_time_calls_respects_warmup_iterations_and_batches():
    seen = []
    durations = time_calls(seen.append, [f"s{i}" for i in range(10)], batch_size=4, warmup=2, iterations=5, duration_s=60)
    assert len(durations) == 5 and len(seen) == 7
    assert all(len(batch) == 4 for batch in seen)


def test_time_calls_stops_at_the_duration():
    import time

    durations = time_calls(lambda batch: time.sleep(0.02), ["a", "b"], 1, warmup=0, iterations=1000, duration_s=0.1)
    assert 3 <= len(durations) < 20


def test_samples_are_seeded_and_bounded():
    sentences = [f"s{i}" for i in range(100)]
    assert sample_texts(sentences, 10, seed=1) == sample_texts(sentences, 10, seed=1)
    assert sample_texts(sentences, 10, seed=1) != sample_texts(sentences, 10, seed=2)
    with pytest.raises(UserError):
        sample_texts(sentences, 101, seed=0)


def test_worker_measures_in_its_own_process_with_threads_set(tiny_model_dir):
    job = {
        "spec": {"name": "tiny", "backend": "torch", "path": str(tiny_model_dir), "family": "fp32"},
        "threads": 2,
        "batch_sizes": [1, 2],
        "paddings": ["dynamic", "max_length"],
        "max_length": 16,
        "texts": ["good film .", "dull mess", "fun !"],
        "warmup": 1,
        "iterations": 3,
        "duration_s": 5.0,
    }
    results = []
    run_worker(job, results.append)
    assert [(r["batch_size"], r["padding"]) for r in results] == [(1, "dynamic"), (2, "dynamic"), (1, "max_length"), (2, "max_length")]
    assert all(r["count"] == 3 and r["p50_ms"] > 0 and r["peak_rss_mib"] > 50 and len(r["durations_ms"]) == 3 for r in results)
    # The worker process itself reports what it ran with: the environment run_worker set and the
    # intra-op pool torch really used (this process's own setting is not what is checked).
    expected = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "torch_intra_op": 2}
    assert all(r["thread_settings"] == expected for r in results), results[0]["thread_settings"]


def test_onnx_worker_runs_with_the_requested_intra_op_threads(signal_model):
    job = {
        "spec": {"name": "signal", "backend": "onnxruntime", "path": str(signal_model.onnx_dir), "family": "fp32"},
        "threads": 2,
        "batch_sizes": [1],
        "paddings": ["dynamic"],
        "max_length": 16,
        "texts": ["good film .", "dull mess"],
        "warmup": 0,
        "iterations": 2,
        "duration_s": 5.0,
    }
    results = []
    run_worker(job, results.append)
    (result,) = results
    settings = result["thread_settings"]
    assert settings["ort_intra_op"] == 2 and settings["OMP_NUM_THREADS"] == "2"  # ORT's own default is 0 (all cores)


def test_interrupted_sweep_resumes_without_measuring_twice(tmp_path, monkeypatch):
    settings = LatencyConfig(batch_sizes=[1], paddings=["dynamic"], threads=[1], samples=1, iterations=1, warmup=0)
    specs = [SystemSpec("a", "onnxruntime", "x", "fp32"), SystemSpec("b", "onnxruntime", "y", "int8")]
    partial = tmp_path / "partial.jsonl"
    row = {"system": "a", "threads": 1, "batch_size": 1, "padding": "dynamic", "p50_ms": 4.0}
    partial.write_text(json.dumps(row) + "\n")
    started = []

    def fake_worker(job, on_result):
        started.append(job["spec"]["name"])
        on_result({**row, "system": job["spec"]["name"], "p50_ms": 2.0})

    monkeypatch.setattr("sst2bench.latency.run_worker", fake_worker)
    results = sweep(specs, settings, ["x"], partial, progress=False)
    assert started == ["b"]
    assert len(partial.read_text().splitlines()) == 2
    assert speedups(results, "a") == {"a": 1.0, "b": 2.0}
