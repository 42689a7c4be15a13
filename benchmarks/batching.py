"""Samples/s at batch 1 and batch 32 (1 thread), with and without length bucketing, side by side in one run.

    SST2_DATA_DIR=../shared/data/sst2 .venv/bin/python benchmarks/batching.py models/ci/fp32-onnx models/ci/int8/*/ --save

Every folder is an ONNX Runtime model folder (one ``.onnx`` file, its tokenizer and config). The
sample is the latency stage's own (``--run``'s eval split, ``latency.samples`` and ``latency.seed``);
the timing is the project's protocol (``sst2bench.latency.sweep``: one worker process per system,
every batch warmed once, interleaved rounds in a seeded random order of systems, every batch timed
equally often per round), run once with both batching rules (``sample-order`` and
``length-bucketed``) in the same rounds. samples/s of a round is batch size / mean call time; the
table gives the median over rounds and the per-round ratio's median [min–max]. ``--save`` writes
the table, with this command line, to ``benchmarks/results/batching-<int8 ISA class>.md`` (one section
per run, appended).
Timings are worth reading only on an otherwise idle machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def per_round_throughput(rows: list[dict]) -> dict[tuple, dict[int, float]]:
    """samples/s per round: ``{(system, batch_size, batching): {round: batch_size * 1e9 / mean ns}}``."""
    import numpy as np

    out: dict[tuple, dict[int, float]] = {}
    for row in rows:
        key = (row["system"], row["batch_size"], row["batching"])
        out.setdefault(key, {})[row["round"]] = row["batch_size"] * 1e9 / float(np.mean(row["durations_ns"]))
    return out


def real_share(lengths: list[int], plan: list[list[int]]) -> float:
    """Real tokens over padded tokens (each batch padded to its longest sentence)."""
    return sum(lengths[i] for batch in plan for i in batch) / sum(len(batch) * max(lengths[i] for i in batch) for batch in plan)


def ratio_text(top: dict[int, float], bottom: dict[int, float]) -> str:
    """Median [min–max] of the per-round ratio top / bottom over the rounds both have."""
    import numpy as np

    ratios = [top[r] / bottom[r] for r in top if r in bottom]
    return f"{np.median(ratios):.2f}x [{min(ratios):.2f}–{max(ratios):.2f}]" if ratios else "—"


def main() -> None:
    from sst2bench.config import load_run
    from sst2bench.latency import BATCHINGS, batch_plan, sample_texts, summarize, sweep, token_lengths
    from sst2bench.paths import anchor_user_paths
    from sst2bench.provenance import cpu_info, git_commit, isa_class
    from sst2bench.stages.common import eval_split, load_data
    from sst2bench.systems import SystemSpec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="ONNX Runtime model folders")
    parser.add_argument("--run", default="standin", help="whose eval split, sample size, seed and max_length (default standin)")
    parser.add_argument("--samples", type=int, help="sentences in the sample (default: the run's latency.samples)")
    parser.add_argument("--batch", type=int, default=32, help="the large batch size (default 32)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=64, help="timed calls per round at batch 1 (whole passes)")
    parser.add_argument("--batched-iterations", type=int, default=8, help="timed calls per round at the large batch (whole passes)")
    parser.add_argument("--save", action="store_true", help="append this run's section to benchmarks/results/batching-<ISA class>.md")
    args = parser.parse_args()
    data_dir = os.environ.get("SST2_DATA_DIR")
    command = f"SST2_DATA_DIR={shlex.quote(data_dir)} " if data_dir else ""
    command += " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/batching.py", *sys.argv[1:]])
    anchor_user_paths()

    missing = [str(f) for f in args.folders if not f.is_dir() or not list(f.glob("*.onnx"))]
    if missing:
        raise SystemExit(f"not ONNX Runtime model folders (a folder with one .onnx file): {', '.join(missing)}")
    cfg = load_run(args.run)
    settings = dataclasses.replace(
        cfg.latency,
        batch_sizes=[1, args.batch],
        paddings=["dynamic"],
        threads=[1],
        rounds=args.rounds,
        iterations=args.iterations,
        batched_iterations=args.batched_iterations,
        duration_s=60.0,
        warmup=0,
        warmup_pass=True,
        peak=False,
        **({"samples": args.samples} if args.samples else {}),
    )
    data, _ = load_data(cfg, splits=(cfg.data.eval_split,))
    texts = sample_texts(list(eval_split(cfg, data)["sentence"]), settings.sample_size, settings.seed)
    lengths = token_lengths(texts, args.folders[0], settings.max_length)
    # Named as given (a run's model folders are links into the artifact cache, named by digest).
    specs = [SystemSpec(f.name, "onnxruntime", str(f.resolve()), "fp32" if "fp32" in f.name else "int8") for f in args.folders]
    if len({s.name for s in specs}) < len(specs):
        raise SystemExit("two folders have the same name: give folders with distinct names")

    with tempfile.TemporaryDirectory() as scratch:
        rows = sweep(specs, settings, texts, Path(scratch) / "rows.jsonl", lengths=lengths, batchings=list(BATCHINGS))
    throughput = per_round_throughput(rows)
    summary = {(m["system"], m["batch_size"], m["batching"]): m for m in summarize(rows, settings.percentile_confidence)}

    import numpy as np

    calls = {row["batch_size"]: len(row["durations_ns"]) for row in rows}
    cpu = cpu_info()
    b, bucketed, plain = args.batch, "length-bucketed", "sample-order"
    padded = {rule: real_share(lengths, batch_plan(lengths, b, rule, settings.seed)) for rule in BATCHINGS}
    lines = [
        f"## Batch 1 against batch {b}, with and without length bucketing ({len(texts)} sentences)",
        "",
        f"Command: `{command}`",
        "",
        f"When: {datetime.now(UTC).isoformat(timespec='seconds')}; sst2bench at {git_commit() or 'no checkout'}.",
        "",
        f"CPU: {cpu['model']} ({cpu['logical_cores']} logical cores); int8 ISA class `{isa_class(cpu)}`; "
        f"flags: {', '.join(k for k, v in cpu['isa'].items() if v) or 'none of the int8-relevant ones'}",
        f"Sample: {len(texts)} sentences of run `{args.run}`'s {cfg.data.eval_split} split (seed {settings.seed}), "
        f"{min(lengths)}–{max(lengths)} tokens (mean {np.mean(lengths):.1f}); 1 thread, dynamic padding; "
        f"{settings.rounds} interleaved rounds; timed calls per round and system: {calls[1]} at batch 1, {calls[b]} at batch {b}.",
        f"Load average when it ended: {os.getloadavg()[0]:.1f} (other processes share this machine).",
        f"Share of the padded tokens at batch {b} that are real: "
        + ", ".join(f"{rule} {padded[rule]:.0%}" for rule in BATCHINGS)
        + f" ({len(texts) // b} batches).",
        "",
        f"samples/s: median over rounds. Ratios: per-round, median [min–max]. b{b} = batch {b}.",
        "",
        f"| system | b1 | b{b} sample-order | b{b} length-bucketed | b{b} sample-order / b1 | b{b} bucketed / b1 | bucketed / sample-order |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for spec in specs:
        one = throughput[spec.name, 1, bucketed]  # at batch 1 both rules form the same batches
        big_plain, big_bucketed = throughput[spec.name, b, plain], throughput[spec.name, b, bucketed]
        lines.append(
            f"| {spec.name} | {np.median(list(one.values())):.1f} | {np.median(list(big_plain.values())):.1f} "
            f"| {np.median(list(big_bucketed.values())):.1f} | {ratio_text(big_plain, one)} | {ratio_text(big_bucketed, one)} "
            f"| {ratio_text(big_bucketed, big_plain)} |"
        )
        wins = sum(big_bucketed[r] > one[r] for r in one if r in big_bucketed)
        verdicts.append(f"- {spec.name}: batch {b} length-bucketed beats batch 1 in {wins} of {len(one)} rounds")
    lines += ["", *verdicts, ""]
    control = [
        f"{s.name} {summary[s.name, 1, bucketed]['samples_per_second']:.1f} vs {summary[s.name, 1, plain]['samples_per_second']:.1f}"
        for s in specs
    ]
    lines.append(f"Control: batch 1 timed under both rules (the same batches), pooled samples/s: {'; '.join(control)}.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"batching-{isa_class(cpu)}.md"
        head = "" if out.is_file() else f"# Batching throughput on the {isa_class(cpu)} class (benchmarks/batching.py)\n\n"
        with open(out, "a") as sink:
            sink.write(head + text + "\n")
        print(f"appended to {out}")


if __name__ == "__main__":
    main()
