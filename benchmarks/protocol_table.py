"""Print a run's evaluation-protocol table from its results (no model is loaded, nothing is measured):

    .venv/bin/python benchmarks/protocol_table.py standin        # reads runs/standin/*.json

Per system: correct count on the reported split and its change against fp32, the counts over the
calibration seeds (min–max, median change), what its choices were tuned on and its cross-fitted
count, fp32 fallbacks, size (and as a share of the fp32 ONNX file), p50 at batch 1 / 1 thread and
the speed-up against the faster fp32 ONNX Runtime row of the same sweep (median, min–max of rounds).
"""

from __future__ import annotations

import argparse


def main() -> None:
    from sst2bench.config import load_run
    from sst2bench.paths import anchor_user_paths
    from sst2bench.report import RunResults

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    args = parser.parse_args()
    anchor_user_paths()
    cfg = load_run(args.run)
    res = RunResults.load(cfg.runs_dir)
    batch1 = res.latency_at(1, threads=1)
    print(f"{res.reported_split}, n = {res.accuracy.n}; CPU: {res.provenance.get('cpu', {}).get('model', '?')}")
    print(
        "| system | correct | Δ vs fp32 | seeds min–max (median Δ) | tuned on | cross-fitted | fp32 fallbacks "
        "| size MiB (% of fp32) | p50 ms b1 1 thr | × fp32 ORT [rounds] |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, scored in res.systems.items():
        vs = scored.vs_fp32
        fp32_correct = vs.baseline_correct if vs else scored.correct
        spread = res.accuracy.seeds.get(name)
        seeds = f"{spread.min}–{spread.max} ({spread.median - fp32_correct:+g})" if spread else ""
        recipe = res.quantize.recipes.get(name)
        estimate = res.accuracy.crossfit.get(name)
        size = res.size_mib(name)
        share = f" ({100 * size / recipe.fp32_size_mib:.0f} %)" if recipe and size else ""
        latency = batch1.get(name)
        print(
            f"| {name} | {scored.correct} | {f'{vs.difference_examples:+d}' if vs else 'baseline'} | {seeds} "
            f"| {(recipe.tuned_on or '') if recipe else ''} | {f'{estimate.correct}/{estimate.total}' if estimate else ''} "
            f"| {len(recipe.fp32_fallback) if recipe else ''} | {f'{size:.1f}' if size else ''}{share} "
            f"| {f'{latency.p50_ms:.2f}' if latency else ''} | {res.speedup(name) or ''} |"
        )


if __name__ == "__main__":
    main()
