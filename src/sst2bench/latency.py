"""One latency protocol for every system: interleaved rounds of timed calls, each system in its own process.

Every (system, threads, padding) unit runs in a worker process that loads the model once, with every
thread pool pinned before import (OpenMP, MKL, OpenBLAS, tokenizers' Rayon pool, torch's intra- and
inter-op pools, the runtime's own setting through ``InferenceConfig.threads``) and read back
afterwards. Before its first timed call a worker makes one untimed call on every batch it will time,
so a runtime that compiles per input shape (OpenVINO) does so outside the timings. The workers of one
(threads, padding) phase stay loaded while the controller runs ``rounds`` rounds: round ``r`` asks
every system once, in a seeded random permutation drawn anew each round, so drift on a shared machine
hits every system alike, no system keeps its place or its predecessor, and a speed ratio is taken per
round. Within a round a setting's calls are whole passes over its batches, each pass in a seeded
random order (the same for every system), so every batch is timed equally often. At batch sizes
above 1 the batches are length-bucketed by default (the sample sorted by token length, neighbours
batched; see :func:`batch_plan`). Each timed call is ``system.predict(batch)`` (what a user waits
for); the tokenizer's share of each call is timed inside it, so the forward pass is known apart.
Memory is the process's current RSS before the load (the tokenizer's libraries already imported),
after it and after the timed calls: what the model adds to its process.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import UserError
from .results.core import FP32_ORT, FP32_ORT_FUSED
from .systems.base import PADDINGS

# Thread pools sized by an environment variable read once at import: set in the worker's environment.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS")
# Tokenizers would otherwise batch-encode on every core, whatever the thread setting.
FIXED_ENV = {"TOKENIZERS_PARALLELISM": "false"}
PERCENTILES = (50, 90, 95, 99)
# How the sample becomes batches at batch sizes above 1 (see batch_plan).
BATCHINGS = ("length-bucketed", "sample-order")


@dataclass
class LatencyConfig:
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8, 32])
    paddings: list[str] = field(default_factory=lambda: list(PADDINGS))
    threads: list[int] = field(default_factory=lambda: [1, 2])
    max_length: int = 128
    # Sentences drawn (seeded) from the eval split; identical for every system.
    samples: int = 64
    # Sentences batched at batch sizes above 1 (0: ``samples``): the same seeded draw, longer, whose
    # first ``samples`` are batch 1's. Length buckets of 32 need a few hundred sentences to pad little.
    batched_samples: int = 0
    seed: int = 0
    # Batches at batch sizes above 1: "length-bucketed" sorts the sample by token length and batches
    # neighbours, so a batch pads to little more than its own sentences; "sample-order" batches
    # consecutive sentences of the seeded sample, padded to the longest of random lengths.
    batching: str = "length-bucketed"
    # Once per worker, before timing: one untimed call on every batch it will time (every input shape).
    warmup_pass: bool = True
    # Untimed calls more at the start of every setting in every round (after the pass, rarely needed).
    warmup: int = 0
    # Interleaved rounds: every system is timed once per round, in a seeded random order drawn each round.
    rounds: int = 5
    # Timed calls per round at batch 1, and at every larger batch: whole passes over the setting's
    # batches (calls // batches of them, at least one), each pass every batch once in a seeded random
    # order. A setting's calls in one round stop after the pass during which duration_s ran out.
    iterations: int = 50
    batched_iterations: int = 10
    duration_s: float = 20.0
    # A percentile is printed only when a distribution-free confidence interval at this level exists
    # for it and at least percentile_tail_calls calls lie beyond it (p99 then needs 100 times that).
    percentile_confidence: float = 0.95
    percentile_tail_calls: int = 8
    # Speed-ups are taken against the faster of these systems (those the run has).
    baselines: list[str] = field(default_factory=lambda: [FP32_ORT, FP32_ORT_FUSED])
    # The machine's matrix-multiply limit, measured with ONNX Runtime: best of peak_repeats calls.
    peak: bool = True
    # Each system's forward time by kind of op, from its runtime's profiler (batch 1, 1 thread).
    profile: bool = True
    peak_repeats: int = 15
    peak_large_size: int = 1024

    def __post_init__(self):
        if not self.batch_sizes or min(self.batch_sizes) < 1 or not self.threads or min(self.threads) < 1:
            raise UserError("latency.batch_sizes and latency.threads must be lists of positive numbers")
        bad = [p for p in self.paddings if p not in PADDINGS]
        if bad or not self.paddings:
            raise UserError(f"latency.paddings must list dynamic and/or max_length, not {bad}")
        if self.sample_size < max(self.batch_sizes) or min(self.iterations, self.batched_iterations, self.rounds) < 1:
            raise UserError("latency: samples must cover the largest batch; rounds, iterations and batched_iterations ≥ 1")
        if self.batched_samples and self.batched_samples < self.samples:
            raise UserError("latency.batched_samples must be 0 (= samples) or at least samples (batch 1's sentences are its first ones)")
        if self.warmup < 0 or self.duration_s <= 0 or not 0 < self.percentile_confidence < 1:
            raise UserError("latency: warmup ≥ 0, duration_s > 0 and 0 < percentile_confidence < 1")
        if self.peak_repeats < 1 or self.peak_large_size < 1:
            raise UserError("latency: peak_repeats and peak_large_size must be positive")
        if self.batching not in BATCHINGS:
            raise UserError(f"latency.batching must be one of {', '.join(BATCHINGS)}, not {self.batching!r}")
        if self.percentile_tail_calls < 1:
            raise UserError("latency.percentile_tail_calls must be at least 1")

    @property
    def sample_size(self) -> int:
        """Sentences drawn: batch 1 times the first ``samples`` of them, larger batches all."""
        return max(self.samples, self.batched_samples)

    def sentences_at(self, batch_size: int) -> int:
        return self.samples if batch_size == 1 else self.sample_size

    def calls(self, batch_size: int) -> int:
        """Timed calls per round at this batch size."""
        return self.iterations if batch_size == 1 else self.batched_iterations


def sample_texts(sentences: list[str], samples: int, seed: int) -> list[str]:
    """A fixed, seeded sample of real sentences: every system sees the same inputs. A longer draw
    starts with a shorter one (one seeded order, cut), so batch 1's sentences do not depend on
    ``batched_samples``."""
    if samples > len(sentences):
        raise UserError(f"latency.samples={samples} is more than the {len(sentences)} sentences available")
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    return [sentences[i] for i in order[:samples]]


def token_lengths(texts: list[str], tokenizer_dir, max_length: int) -> list[int]:
    """Each text's token count (special tokens included, truncated at ``max_length``): what dynamic padding pads to."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]


def batch_plan(lengths: list[int], batch_size: int, batching: str, seed: int) -> list[list[int]]:
    """The batches (indices into the sample) every system is timed on at one batch size.

    When the sample is not a multiple of ``batch_size``, a seeded random ``len % batch_size`` sentences
    are left out (so neither rule drops one end of the length range). ``sample-order`` then cuts the
    seeded sample in order; ``length-bucketed`` sorts it by token length (ties keep sample order) and
    cuts neighbours, so each batch pads to its longest sentence, which is close to all of them. At
    batch 1 both rules give the same batches."""
    if batching not in BATCHINGS:
        raise UserError(f"batching must be one of {', '.join(BATCHINGS)}, not {batching!r}")
    if batch_size < 1 or len(lengths) < batch_size:
        raise UserError(f"a batch of {batch_size} needs at least that many sentences (the sample has {len(lengths)})")
    left_out = set(random.Random(f"{seed}:left-out:{batch_size}").sample(range(len(lengths)), len(lengths) % batch_size))
    kept = [i for i in range(len(lengths)) if i not in left_out]
    if batching == "length-bucketed":
        kept.sort(key=lambda i: lengths[i])
    return [kept[start : start + batch_size] for start in range(0, len(kept), batch_size)]


def call_order(batches: int, calls: int, seed: int, round_index: int, setting: str) -> list[list[int]]:
    """One round's timed calls at one setting: ``max(1, calls // batches)`` passes, each a seeded random
    permutation of the batch indices, so every batch is timed equally often and none always first.
    The seed, the round and ``setting`` fix it: every system gets the same order in a round."""
    rng = random.Random(f"{seed}:calls:{setting}:{round_index}")
    passes = []
    for _ in range(max(1, calls // batches)):
        order = list(range(batches))
        rng.shuffle(order)
        passes.append(order)
    return passes


def system_order(names: list, round_index: int, seed: int) -> list:
    """Round ``r``'s order of systems: a seeded random permutation drawn anew each round, so no system
    keeps its place or its predecessor (a fixed rotation keeps both)."""
    order = list(names)
    random.Random(f"{seed}:systems:{round_index}").shuffle(order)
    return order


def supported_percentiles(count: int, confidence: float, tail_calls: int = 8, percentiles=PERCENTILES) -> list[int]:
    """The percentiles that ``count`` calls can estimate: those with a distribution-free (order
    statistic) confidence interval inside the sample (q^n and (1-q)^n both at most (1 - confidence) / 2)
    and with at least ``tail_calls`` calls beyond them; with fewer, the q-th is the slowest few calls."""
    from scipy.stats import binom

    tail = (1 - confidence) / 2
    return [
        p
        for p in percentiles
        if count * (100 - p) >= tail_calls * 100 and binom.pmf(count, count, p / 100) <= tail and binom.pmf(0, count, p / 100) <= tail
    ]


def percentile_interval(values, percentile: float, confidence: float) -> tuple[float, float] | None:
    """A distribution-free confidence interval of the percentile: order statistics ``[x_(l), x_(u)]``
    with ``P(l <= B < u) >= confidence`` where B ~ Bin(n, q) counts the calls below the true
    percentile. None when either end would lie past the sample."""
    import numpy as np
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=np.float64))
    n, q, tail = len(x), percentile / 100, (1 - confidence) / 2
    ranks = np.arange(1, n + 1)
    lower = ranks[binom.cdf(ranks - 1, n, q) <= tail]  # P(B <= l - 1): the interval starts above the percentile
    upper = ranks[binom.sf(ranks - 1, n, q) <= tail]  # P(B >= u): it ends below it
    if not len(lower) or not len(upper):
        return None
    return float(x[lower.max() - 1]), float(x[upper.min() - 1])


class TokenizeTimer:
    """Wraps a system's ``encode`` so the tokenizer's share of every call is timed inside the call."""

    def __init__(self, encode):
        self.encode = encode
        self.elapsed_ns = 0

    def __call__(self, *args, **kwargs):
        started = time.perf_counter_ns()
        try:
            return self.encode(*args, **kwargs)
        finally:
            self.elapsed_ns += time.perf_counter_ns() - started


def time_calls(predict, batches: list[list[str]], passes: list[list[int]], warmup: int, duration_s: float, tokenizer=None):
    """``warmup`` untimed calls, then the timed calls pass by pass (each pass a list of indices into
    ``batches``); after the pass during which ``duration_s`` ran out it stops, so every batch is timed
    equally often. Returns each call's nanoseconds, with a :class:`TokenizeTimer` its tokenizer's share,
    and the batch each call timed."""
    order = [index for one_pass in passes for index in one_pass]
    for i in range(warmup):
        predict(batches[order[i % len(order)]])
    durations: list[int] = []
    tokenize: list[int] = []
    timed: list[int] = []
    deadline = time.perf_counter() + duration_s
    for one_pass in passes:
        for index in one_pass:
            tokenized = tokenizer.elapsed_ns if tokenizer else 0
            started = time.perf_counter_ns()
            predict(batches[index])
            durations.append(time.perf_counter_ns() - started)
            tokenize.append(tokenizer.elapsed_ns - tokenized if tokenizer else 0)
            timed.append(index)
        if time.perf_counter() > deadline:
            break
    return durations, tokenize, timed


def warm_every_shape(predict, plans: dict) -> int:
    """One untimed call on every distinct batch of every plan: each input shape a worker will time."""
    seen = set()
    for batches in plans.values():
        for batch in batches:
            if tuple(batch) not in seen:
                seen.add(tuple(batch))
                predict(batch)
    return len(seen)


def current_rss_mib() -> float:
    """Resident memory of this process now (not its peak): /proc/self/statm's resident pages."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def pin_torch_interop() -> None:
    """torch's inter-op pool has no environment variable: set it once torch is loaded, before it runs work."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # the pool already started; what it really is gets read back and recorded
            pass


def import_shared_libraries() -> None:
    """Import what every local system's tokenizer needs (transformers, which brings torch when installed)
    before the memory baseline, so the memory a model adds is its own and its runtime's, not theirs."""
    try:
        import transformers

        transformers.AutoTokenizer  # noqa: B018 - transformers imports lazily: touch the name to load it
    except ImportError:
        pass


def read_thread_settings(system) -> dict:
    """The thread settings this process really runs with, read back from the runtimes themselves."""
    settings = {name: os.environ.get(name) for name in (*THREAD_ENV, *FIXED_ENV)}
    torch = sys.modules.get("torch")
    if torch is not None:
        settings["torch_intra_op"] = torch.get_num_threads()
        settings["torch_inter_op"] = torch.get_num_interop_threads()
    session = getattr(system, "session", None)
    if session is not None and hasattr(session, "get_session_options"):
        options = session.get_session_options()
        settings["ort_intra_op"] = options.intra_op_num_threads
        settings["ort_inter_op"] = options.inter_op_num_threads
    if callable(getattr(system, "runtime_properties", None)):  # a backend that reads its own pools back (OpenVINO)
        settings.update({f"runtime_{name}": value for name, value in system.runtime_properties().items()})
    return settings


def worker() -> None:
    """One system, one thread count, one padding: load once, warm every batch once, then answer
    round commands on stdin.

    The first stdin line is the job (see :func:`worker_job`); each later line asks for one round's
    settings and is answered with one JSON line per setting, then ``{"event": "done"}``."""
    from .systems import InferenceConfig, SystemSpec

    job = json.loads(sys.stdin.readline())
    spec = SystemSpec(**job["spec"])
    texts = job["texts"]
    plans = {(p["batching"], p["batch_size"]): [[texts[i] for i in batch] for batch in p["batches"]] for p in job["plans"]}
    rss_bare = current_rss_mib()
    import_shared_libraries()
    pin_torch_interop()
    rss_before = current_rss_mib()
    started = time.perf_counter()
    inference = InferenceConfig(
        batch_size=max(job["batch_sizes"]), max_length=job["max_length"], padding=job["padding"], threads=job["threads"]
    )
    system = spec.load(inference)
    pin_torch_interop()
    load_seconds = time.perf_counter() - started
    tokenizer = None
    if callable(getattr(system, "encode", None)):
        tokenizer = system.encode = TokenizeTimer(system.encode)
    rss_loaded = current_rss_mib()
    started = time.perf_counter()
    warmed = warm_every_shape(system.predict, plans) if job["warmup_pass"] else 0
    loaded = {
        "rss_shared_libraries_mib": round(rss_before - rss_bare, 1),
        "rss_before_load_mib": round(rss_before, 1),
        "rss_after_load_mib": round(rss_loaded, 1),
        "load_seconds": round(load_seconds, 2),
        "warmup_pass_calls": warmed,
        "warmup_pass_seconds": round(time.perf_counter() - started, 3),
    }
    print(json.dumps({"event": "loaded", **loaded}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        for setting in command["settings"]:
            batch_size, batching = setting["batch_size"], setting["batching"]
            durations, tokenize, timed = time_calls(
                system.predict, plans[batching, batch_size], setting["passes"], command["warmup"], command["duration_s"], tokenizer
            )
            row = {
                "round": command["round"],
                "system": spec.name,
                "family": spec.family,
                "backend": spec.backend,
                "threads": job["threads"],
                "batch_size": batch_size,
                "padding": job["padding"],
                "batching": batching,
                "durations_ns": durations,
                "tokenize_ns": tokenize if tokenizer else [],
                "batches_timed": timed,
                **loaded,
                "rss_after_calls_mib": round(current_rss_mib(), 1),
                "thread_settings": read_thread_settings(system),
            }
            print(json.dumps(row), flush=True)
        print(json.dumps({"event": "done"}), flush=True)


def worker_job(spec: dict, threads: int, padding: str, settings: LatencyConfig, texts: list[str], plans: dict) -> dict:
    """What a worker is started with: its system, thread count and padding, the sample, and every
    batch it will time (``plans``: ``{(batching, batch_size): batches of indices into texts}``)."""
    return {
        "spec": spec,
        "threads": threads,
        "padding": padding,
        "batch_sizes": sorted({b for _, b in plans}),
        "max_length": settings.max_length,
        "texts": texts,
        "plans": [{"batching": rule, "batch_size": b, "batches": batches} for (rule, b), batches in plans.items()],
        "warmup_pass": settings.warmup_pass,
    }


def worker_env(threads: int) -> dict:
    env = dict(os.environ)
    env.update({name: str(threads) for name in THREAD_ENV})
    env.update(FIXED_ENV)
    return env


class Worker:
    """A live worker process holding one loaded system; stderr goes to a file so it can never block."""

    def __init__(self, job: dict):
        self.name = job["spec"]["name"]
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sst2bench.latency"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=worker_env(job["threads"]),
        )
        self.loaded = self.send(job)[0]

    def send(self, message: dict) -> list[dict]:
        """Write one command, return the lines it answered (the load report, or one row per setting)."""
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        rows = []
        for line in self.process.stdout:
            row = json.loads(line)
            if row.get("event") == "loaded":
                return [row]
            if row.get("event") == "done":
                return rows
            rows.append(row)
        self.fail()

    def fail(self):
        self.process.wait()
        self.stderr.seek(0)
        raise RuntimeError(f"latency worker for {self.name} stopped (exit {self.process.returncode}):\n{self.stderr.read()[-2000:]}")

    def measure(self, round_index: int, settings: list[dict], warmup: int, duration_s: float) -> list[dict]:
        return self.send({"round": round_index, "settings": settings, "warmup": warmup, "duration_s": duration_s})

    def close(self, check: bool = True) -> None:
        """End the process (its stdin closes); with ``check``, a non-zero exit raises with its stderr."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        if self.process.wait() != 0 and check:
            self.fail()


def row_key(row: dict) -> tuple:
    return (row["round"], row["system"], row["threads"], row["batch_size"], row["padding"], row.get("batching", "sample-order"))


def sweep(
    specs,
    settings: LatencyConfig,
    texts: list[str],
    partial_path: Path,
    progress: bool = True,
    start_worker=Worker,
    lengths: list[int] | None = None,
    batchings: list[str] | None = None,
) -> list[dict]:
    """Every system at every (threads, padding, batch, batching) in ``settings.rounds`` interleaved rounds.

    ``lengths`` are the texts' token lengths (:func:`token_lengths`), needed to bucket batches above
    1; ``batchings`` defaults to ``[settings.batching]`` (a benchmark may time several side by side).
    Rows append to ``partial_path`` as they come, keyed by (round, system, setting), so an
    interrupted sweep keeps what it measured and a rerun measures only what is missing. Each row
    records the system's place in its round's order (``position``)."""
    from tqdm.auto import tqdm

    batchings = list(batchings or [settings.batching])
    if lengths is None:
        if "length-bucketed" in batchings and max(settings.batch_sizes) > 1:
            raise ValueError("length-bucketed batching needs the sample's token lengths")
        lengths = [0] * len(texts)
    if len(lengths) != len(texts):
        raise ValueError(f"{len(lengths)} token lengths for {len(texts)} texts")
    if len(texts) < settings.sample_size:
        raise ValueError(f"{len(texts)} texts for settings that time {settings.sample_size} (latency.samples / batched_samples)")
    plans = {
        (rule, b): batch_plan(lengths[: settings.sentences_at(b)], b, rule, settings.seed)
        for b in settings.batch_sizes
        for rule in batchings
    }
    done = []
    if partial_path.is_file():
        done = [json.loads(line) for line in partial_path.read_text().splitlines() if line.strip()]
    measured = {row_key(r) for r in done}
    partial_path.parent.mkdir(parents=True, exist_ok=True)

    def missing(round_index, spec, threads, padding):
        return [
            {
                "batch_size": b,
                "batching": rule,
                "passes": call_order(len(plans[rule, b]), settings.calls(b), settings.seed, round_index, f"{rule}:{b}"),
            }
            for b in settings.batch_sizes
            for rule in batchings
            if (round_index, spec.name, threads, b, padding, rule) not in measured
        ]

    phases = [(t, p) for t in settings.threads for p in settings.paddings]
    todo = sum(len(missing(r, s, t, p)) for t, p in phases for r in range(settings.rounds) for s in specs)
    by_name = {spec.name: spec for spec in specs}
    with tqdm(total=todo, desc="latency", unit="setting", disable=not progress) as bar, open(partial_path, "a") as sink:
        for threads, padding in phases:
            units = [s for s in specs if any(missing(r, s, threads, padding) for r in range(settings.rounds))]
            workers = {}
            try:
                for spec in units:
                    workers[spec.name] = start_worker(worker_job(asdict(spec), threads, padding, settings, texts, plans))
                for round_index in range(settings.rounds):
                    for position, name in enumerate(system_order(list(by_name), round_index, settings.seed)):
                        wanted = missing(round_index, by_name[name], threads, padding) if name in workers else []
                        if not wanted:
                            continue
                        for row in workers[name].measure(round_index, wanted, settings.warmup, settings.duration_s):
                            row["position"] = position
                            sink.write(json.dumps(row) + "\n")
                            sink.flush()
                            done.append(row)
                            measured.add(row_key(row))
                            bar.set_postfix_str(f"round {round_index} {name} t={threads} b={row['batch_size']} {padding}")
                            bar.update(1)
                for live in workers.values():
                    live.close()
            finally:  # after a failure, end every other worker of the phase too
                for live in workers.values():
                    live.close(check=False)
    return done


def summarize(rows: list[dict], confidence: float, tail_calls: int = 8) -> list[dict]:
    """One measurement per (system, threads, batch, padding, batching): calls pooled over rounds for
    the percentiles (with their intervals), each round's p50 kept for the ratios, forward pass and
    tokenizer apart."""
    import numpy as np

    from .results import LatencyStats

    groups: dict[tuple, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["round"]):
        key = (row["system"], row["threads"], row["batch_size"], row["padding"], row.get("batching", "sample-order"))
        groups.setdefault(key, []).append(row)
    out = []
    for (system, threads, batch_size, padding, batching), group in groups.items():
        durations = [d for row in group for d in row["durations_ns"]]
        tokenize = [t for row in group for t in row["tokenize_ns"]]
        forward = [d - t for row in group for d, t in zip(row["durations_ns"], row["tokenize_ns"])]
        stats = LatencyStats.from_ns(durations, batch_size)
        supported = supported_percentiles(stats.count, confidence, tail_calls)
        durations_ms = [d / 1e6 for d in durations]
        intervals = {f"p{p}": [round(v, 4) for v in percentile_interval(durations_ms, p, confidence)] for p in supported}
        out.append(
            {
                "system": system,
                "family": group[0]["family"],
                "backend": group[0].get("backend", ""),
                "threads": threads,
                "batch_size": batch_size,
                "padding": padding,
                "batching": batching,
                **stats.model_dump(),
                "supported_percentiles": supported,
                "percentile_intervals_ms": intervals,
                "rounds": [row["round"] for row in group],
                "round_positions": [row.get("position", -1) for row in group],
                "round_p50_ms": [float(np.median(row["durations_ns"])) / 1e6 for row in group],
                "tokenize_p50_ms": float(np.median(tokenize)) / 1e6 if tokenize else None,
                "tokenize_mean_ms": float(np.mean(tokenize)) / 1e6 if tokenize else None,
                "forward_p50_ms": float(np.median(forward)) / 1e6 if forward else None,
                "forward_mean_ms": float(np.mean(forward)) / 1e6 if forward else None,
                "durations_ms": [round(d / 1e6, 3) for d in durations],
                "load_seconds": max(row["load_seconds"] for row in group),
                "warmup_pass_calls": max(row.get("warmup_pass_calls", 0) for row in group),
                "warmup_pass_seconds": max(row.get("warmup_pass_seconds", 0.0) for row in group),
                "rss_shared_libraries_mib": max(row["rss_shared_libraries_mib"] for row in group),
                "rss_before_load_mib": min(row["rss_before_load_mib"] for row in group),
                "rss_added_after_load_mib": max(row["rss_after_load_mib"] - row["rss_before_load_mib"] for row in group),
                "rss_added_after_calls_mib": max(row["rss_after_calls_mib"] - row["rss_before_load_mib"] for row in group),
                "thread_settings": group[-1]["thread_settings"],
            }
        )
    return out


if __name__ == "__main__":
    worker()
