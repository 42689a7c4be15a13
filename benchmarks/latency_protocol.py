"""Run the latency protocol on a run's systems and print the table: medians, ranges, ratios, fraction of peak.

    .venv/bin/python benchmarks/latency_protocol.py standin                      # the run's own latency params
    .venv/bin/python benchmarks/latency_protocol.py standin --rounds 2 --iterations 20 --batch-sizes 1 --threads 1 \
        --systems fp32-ort ort-dynamic-pc                                        # a small setting

Measurements append to ``benchmarks/out/<run>-<digest>.partial.jsonl`` (an interrupted run resumes);
the summary is written beside it as JSON. Timings are worth reading only on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    from sst2bench.config import load_run
    from sst2bench.latency import sample_texts
    from sst2bench.paths import anchor_user_paths
    from sst2bench.stages.common import all_specs, eval_split, load_data
    from sst2bench.stages.latency import latency_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--systems", nargs="*", help="only these systems (default: every local system of the run)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--iterations", type=int, help="timed calls per round at batch 1")
    parser.add_argument("--batched-iterations", type=int, help="timed calls per round at larger batches")
    parser.add_argument("--warmup", type=int, help="untimed calls per setting and round")
    parser.add_argument("--batch-sizes", type=int, nargs="*")
    parser.add_argument("--threads", type=int, nargs="*")
    parser.add_argument("--paddings", nargs="*")
    parser.add_argument("--no-peak", action="store_true", help="skip the machine's matrix-multiply limit")
    parser.add_argument("--no-warmup-pass", action="store_true", help="time without the untimed call on every input shape first")
    args = parser.parse_args()
    anchor_user_paths()

    cfg = load_run(args.run)
    overrides = {k: v for k, v in vars(args).items() if k not in ("run", "systems", "no_peak", "no_warmup_pass") and v is not None}
    switches = {**({"peak": False} if args.no_peak else {}), **({"warmup_pass": False} if args.no_warmup_pass else {})}
    settings = dataclasses.replace(cfg.latency, **overrides, **switches)
    data, _ = load_data(cfg, splits=(cfg.data.eval_split,))
    texts = sample_texts(list(eval_split(cfg, data)["sentence"]), settings.sample_size, settings.seed)
    specs, skipped = all_specs(cfg)
    if args.systems:
        specs = [s for s in specs if s.name in args.systems]
    tag = hashlib.sha256(json.dumps([dataclasses.asdict(settings), [s.name for s in specs]], sort_keys=True).encode()).hexdigest()[:10]
    OUT.mkdir(exist_ok=True)
    result = latency_result(cfg, settings, specs, texts, OUT / f"{args.run}-{tag}.partial.jsonl")
    (OUT / f"{args.run}-{tag}.json").write_text(result.model_dump_json(indent=2))

    cpu = result.provenance.get("cpu", {})
    print(f"CPU: {cpu.get('model')}; int8 ISA: {', '.join(k for k, v in cpu.get('isa', {}).items() if v)}")
    print(f"load average when it ended (other processes on this machine): {os.getloadavg()[0]:.1f}")
    print(f"{settings.rounds} interleaved rounds; skipped: {skipped or 'none'}\n")
    print(result.table().to_string(index=False))
    print("\nPer-round p50 (ms), rounds in time order; the first round pays whatever the warm-up did not")
    for m in result.results:
        first, later = m.round_p50_ms[0], sorted(m.round_p50_ms[1:])
        change = f"first vs median of later {first / later[len(later) // 2] - 1:+.1%}" if later else ""
        print(f"  t={m.threads} b={m.batch_size} {m.system:28s} {' '.join(f'{v:.2f}' for v in m.round_p50_ms)}  {change}")
    print("\nSpeed-up over the faster fp32 baseline: median [min–max] over rounds")
    for ratio in result.ratios:
        print(
            f"  t={ratio.threads} b={ratio.batch_size} {ratio.padding:10s} {ratio.system:28s} vs {ratio.baseline:15s}"
            f" {ratio.median:5.2f}x [{ratio.low:.2f}–{ratio.high:.2f}] ({ratio.rounds} rounds)"
        )
    if result.peak:
        print(f"\nMachine limit ({result.peak.runtime}): {result.peak.method}")
        for peak in result.peak.peaks:
            print(f"  {peak.precision:13s} {peak.shape:6s} t={peak.threads}: {peak.gops_per_second:7.1f} GOP/s")
        print("\nFraction of peak (batch 1, forward pass only)")
        for f in result.peak_fractions:
            share = f.macs_int8 / (f.macs_int8 + f.macs_fp32)
            print(
                f"  t={f.threads} {f.system:28s} int8 share {share:4.0%}  {f.achieved_gops_per_second:6.1f} GOP/s"
                f"  model-shape peak {f.fraction_of_model_shape_peak:.0%}  large peak {f.fraction_of_large_peak:.0%} {f.note}"
            )
    print(f"\nwrote {OUT / f'{args.run}-{tag}.json'}")


if __name__ == "__main__":
    main()
