"""One latency protocol for every system: warm up, time each call, summarise, in its own process.

Each (system, threads) pair runs in a fresh worker process with every backend's thread count set
before import (OMP, torch, ONNX Runtime), so peak memory is the system's own and one system's
thread pools cannot slow the next. Every timed call is ``system.predict(batch)``: tokenization,
forward pass and softmax, what a user of the system waits for.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import UserError
from .results import LatencyStats
from .systems.base import PADDINGS

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class LatencyConfig:
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8, 32])
    paddings: list[str] = field(default_factory=lambda: list(PADDINGS))
    threads: list[int] = field(default_factory=lambda: [1, 2])
    max_length: int = 128
    # Sentences drawn (seeded) from the eval split; identical for every system.
    samples: int = 64
    seed: int = 0
    warmup: int = 5
    # Timed calls per setting, or stop after duration_s seconds, whichever comes first.
    iterations: int = 50
    duration_s: float = 20.0

    def __post_init__(self):
        if not self.batch_sizes or min(self.batch_sizes) < 1 or not self.threads or min(self.threads) < 1:
            raise UserError("latency.batch_sizes and latency.threads must be lists of positive numbers")
        bad = [p for p in self.paddings if p not in PADDINGS]
        if bad or not self.paddings:
            raise UserError(f"latency.paddings must list dynamic and/or max_length, not {bad}")
        if self.samples < max(self.batch_sizes) or self.iterations < 1 or self.warmup < 0 or self.duration_s <= 0:
            raise UserError("latency: samples must cover the largest batch, iterations ≥ 1, warmup ≥ 0, duration_s > 0")


def sample_texts(sentences: list[str], samples: int, seed: int) -> list[str]:
    """A fixed, seeded sample of real sentences: every system sees the same inputs."""
    if samples > len(sentences):
        raise UserError(f"latency.samples={samples} is more than the {len(sentences)} sentences available")
    return random.Random(seed).sample(list(sentences), samples)


def time_calls(predict, texts: list[str], batch_size: int, warmup: int, iterations: int, duration_s: float) -> list[int]:
    """``warmup`` untimed calls, then up to ``iterations`` timed ones or ``duration_s``, whichever ends first."""
    count = max(1, len(texts) // batch_size)  # consecutive batches, wrapping round when texts run short
    batches = [[texts[(i * batch_size + j) % len(texts)] for j in range(batch_size)] for i in range(count)]
    for i in range(warmup):
        predict(batches[i % len(batches)])
    durations: list[int] = []
    deadline = time.perf_counter() + duration_s
    for i in range(iterations):
        started = time.perf_counter_ns()
        predict(batches[i % len(batches)])
        durations.append(time.perf_counter_ns() - started)
        if time.perf_counter() > deadline:
            break
    return durations


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(job: dict) -> None:
    """Measure one system at one thread count over every (batch, padding) setting; a JSON line each."""
    from .systems import InferenceConfig, SystemSpec

    spec = SystemSpec(**job["spec"])
    threads = job["threads"]
    started = time.perf_counter()
    systems = {
        padding: spec.load(
            InferenceConfig(batch_size=max(job["batch_sizes"]), max_length=job["max_length"], padding=padding, threads=threads)
        )
        for padding in job["paddings"]
    }
    load_seconds = time.perf_counter() - started
    rss_loaded = peak_rss_mib()
    # The thread settings this process really ran with, read back from the runtimes themselves.
    thread_settings = {name: os.environ.get(name) for name in THREAD_ENV}
    if "torch" in sys.modules:
        thread_settings["torch_intra_op"] = sys.modules["torch"].get_num_threads()
    sessions = [system.session for system in systems.values() if hasattr(system, "session")]
    if sessions:
        thread_settings["ort_intra_op"] = sessions[0].get_session_options().intra_op_num_threads
    for padding, system in systems.items():
        for batch_size in job["batch_sizes"]:
            durations = time_calls(system.predict, job["texts"], batch_size, job["warmup"], job["iterations"], job["duration_s"])
            print(
                json.dumps(
                    {
                        "system": spec.name,
                        "family": spec.family,
                        "threads": threads,
                        "batch_size": batch_size,
                        "padding": padding,
                        **LatencyStats.from_ns(durations, batch_size).model_dump(),
                        "durations_ms": [round(d / 1e6, 3) for d in durations],
                        "load_seconds": round(load_seconds, 2),
                        "rss_after_load_mib": round(rss_loaded, 1),
                        "peak_rss_mib": round(peak_rss_mib(), 1),
                        "thread_settings": thread_settings,
                    }
                ),
                flush=True,
            )


def run_worker(job: dict, on_result) -> None:
    """Start a worker process with the thread count in its environment; pass each result on."""
    env = dict(os.environ)
    for name in THREAD_ENV:
        env[name] = str(job["threads"])
    process = subprocess.Popen(
        [sys.executable, "-m", "sst2bench.latency"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    process.stdin.write(json.dumps(job))
    process.stdin.close()
    for line in process.stdout:
        on_result(json.loads(line))
    stderr = process.stderr.read()
    if process.wait() != 0:
        raise RuntimeError(f"latency worker for {job['spec']['name']} failed:\n{stderr[-2000:]}")


def sweep(specs, settings, texts: list[str], partial_path: Path, progress: bool = True) -> list[dict]:
    """Measure every system at every thread count; results append to ``partial_path`` as they come,
    so an interrupted sweep keeps what it measured and a rerun measures only what is missing."""
    from tqdm.auto import tqdm

    done = []
    if partial_path.is_file():
        done = [json.loads(line) for line in partial_path.read_text().splitlines() if line.strip()]
    measured = {(r["system"], r["threads"], r["batch_size"], r["padding"]) for r in done}
    per_process = len(settings.batch_sizes) * len(settings.paddings)
    jobs = []
    for spec in specs:
        for threads in settings.threads:
            keys = {(spec.name, threads, b, p) for b in settings.batch_sizes for p in settings.paddings}
            if not keys <= measured:
                jobs.append((spec, threads))
    partial_path.parent.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(jobs) * per_process, desc="latency", unit="setting", disable=not progress) as bar, open(partial_path, "a") as sink:

        def keep(result):
            sink.write(json.dumps(result) + "\n")
            sink.flush()
            done.append(result)
            bar.set_postfix_str(
                f"{result['system']} t={result['threads']} b={result['batch_size']} {result['padding']}: p50 {result['p50_ms']:.1f} ms"
            )
            bar.update(1)

        for spec, threads in jobs:
            job = {
                "spec": asdict(spec),
                "threads": threads,
                "batch_sizes": list(settings.batch_sizes),
                "paddings": list(settings.paddings),
                "max_length": settings.max_length,
                "texts": texts,
                "warmup": settings.warmup,
                "iterations": settings.iterations,
                "duration_s": settings.duration_s,
            }
            run_worker(job, keep)
    return done


def speedups(results: list[dict], baseline: str, batch_size: int = 1, padding: str = "dynamic", threads: int = 1) -> dict[str, float]:
    """p50 ratio baseline / system at one setting (higher is faster), from one side-by-side sweep."""
    at = {r["system"]: r for r in results if (r["batch_size"], r["padding"], r["threads"]) == (batch_size, padding, threads)}
    if baseline not in at:
        return {}
    return {name: at[baseline]["p50_ms"] / r["p50_ms"] for name, r in at.items()}


if __name__ == "__main__":
    worker(json.loads(sys.stdin.read()))
