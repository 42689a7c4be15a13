"""Static recipes calibrated with any train rows (``calibration_composition: rows``) against whole
train sentences (``sentences``): each model's correct count beside fp32 on the tuning split's tune
part, on validation (the development split) and on the final split (SST-2's labelled test sentences).

Only the tune part may decide the default (it did: rows); validation and the final split are
printed for the record and inform no choice.

    SST2_DATA_DIR=../shared/data/sst2 .venv/bin/python benchmarks/calibration_composition.py --run standin \
        --recipes ort-static-qop-fused-rr ort-static-qdq-u8s8-pc-rr inc-static nncf-openvino --save

Builds the run's fp32 model first when it is missing (the model stage, cached). Models and
predictions come from the project's artifact cache, so a run that already made one is not redone.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import time
from pathlib import Path

from sst2bench.cache import sha256_of
from sst2bench.config import load_run
from sst2bench.paths import project_root
from sst2bench.provenance import cpu_info, isa_class
from sst2bench.quantization import preset
from sst2bench.quantization.artifacts import load_record
from sst2bench.quantization.base import TuningFailed
from sst2bench.results import FP32_TORCH
from sst2bench.stages.accuracy import score_all
from sst2bench.stages.common import eval_split, fp32_specs, load_data, model_result, tuning_split
from sst2bench.stages.model import stage_model
from sst2bench.stages.quantize import quantized
from sst2bench.systems import SystemSpec
from sst2bench.tables import load_labelled

COMPOSITIONS = ("rows", "sentences")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="ci", help="the run whose fp32 model and data are used (default ci)")
    parser.add_argument("--recipes", nargs="+", help="static presets (default: the run's static recipes)")
    parser.add_argument("--final-from", default="standin", help="the run whose params name the final split (default standin)")
    parser.add_argument("--save", action="store_true", help="append the table to benchmarks/results/calibration-composition-<class>.md")
    args = parser.parse_args()

    cfg = load_run(args.run)
    started = time.perf_counter()
    if not model_result(cfg).done:
        print(f"building {args.run}'s fp32 model (the model stage)", flush=True)
        stage_model(cfg)
    model = model_result(cfg)
    data, _ = load_data(cfg)
    splits = tuning_split(cfg, data)
    final_cfg = load_run(args.final_from).final_test
    if final_cfg is None:
        raise SystemExit(f"run {args.final_from} names no final_test split")
    final_file = project_root() / final_cfg.source
    if final_cfg.sha256 and sha256_of(final_file) != final_cfg.sha256:
        raise SystemExit(f"{final_file}: not the file params {args.final_from}.final_test pin (sha256)")
    splits_to_score = {
        f"tune part ({len(splits.tuning)})": splits.tuning,
        "validation": eval_split(cfg, data),
        "final": load_labelled(str(final_file)),
    }

    names = args.recipes or [r.name for r in cfg.quantize.recipe_objects() if r.is_static]
    tuned: dict[str, str] = {}  # label: the INC trial that met its target on the tune part
    failed: dict[str, str] = {}  # label: INC's trials on the tune part when none met its target
    specs = [next(s for s in fp32_specs(cfg) if s.name == FP32_TORCH)]
    for name in names:
        recipe = preset(name, **cfg.quantize.overrides.get(name, {}))
        if not recipe.is_static:
            raise SystemExit(f"{name} is not a static recipe: it takes no calibration")
        for composition in COMPOSITIONS:
            # The recipe's own name, so the run's model (its default composition) is a cache hit.
            variant, label = recipe.replace(calibration_composition=composition), f"{name}·{composition}"
            began = time.perf_counter()
            try:
                folder, hit = quantized(cfg, variant, Path(model.onnx_dir), splits.train, splits.tuning)
            except TuningFailed as failure:
                fp32, tried = failure.trials[0]["accuracy"], [t["accuracy"] for t in failure.trials[1:]]
                failed[label] = f"{len(tried)} int8 trials, best {100 * max(tried):.2f} % against fp32's {100 * fp32:.2f} %"
                print(f"{label}: tuning failed: {failure}", flush=True)
                continue
            trials = (load_record(folder).get("tuning") or {}).get("trials")
            if trials:
                tuned[label] = f"accepted at int8 trial {len(trials) - 1}"
            print(f"{label}: {'cached' if hit else f'made in {time.perf_counter() - began:.0f} s'}", flush=True)
            specs.append(SystemSpec(label, load_record(folder)["backend"], str(folder), "int8"))

    scores = {}
    # Predictions go to a folder of their own under the run's predictions (score_all names files relative to those).
    for split_name, split in splits_to_score.items():
        folder = cfg.runs_dir / "predictions" / "calibration-composition" / split_name.split()[0]
        scores[split_name] = score_all(cfg, specs, split, folder, progress=False)
        print(f"scored {len(specs)} systems on {split_name} ({len(split)} sentences)", flush=True)

    lines = [
        f"## {args.run}: calibration rows vs whole sentences",
        "",
        f"Command: `SST2_DATA_DIR=../shared/data/sst2 .venv/bin/python benchmarks/calibration_composition.py --run {args.run} "
        f"--recipes {' '.join(names)}`",
        "",
        f"When: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}; sst2bench at {git_commit()}; "
        f"{time.perf_counter() - started:.0f} s.",
        "",
        f"CPU: {cpu_info()['model']}; int8 ISA class `{isa_class()}`. fp32 ({FP32_TORCH}): "
        + "; ".join(f"{split} {scores[split][FP32_TORCH].correct}/{scores[split][FP32_TORCH].n}" for split in scores)
        + ". Each count is paired with fp32 on the same sentences: Δ = int8 − fp32, with the Newcombe 95 % interval and "
        "the non-inferiority verdict at the run's floor.",
        "",
        "| recipe | split | rows (default) | Δ rows | sentences | Δ sentences | sentences − rows | agreement with fp32, rows → sentences |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name in names:
        for split_name, systems in scores.items():
            before, after = systems.get(f"{name}·rows"), systems.get(f"{name}·sentences")
            lines.append(
                f"| {name} | {split_name} | {count(before, failed.get(f'{name}·rows'))} | {delta(before)} | "
                f"{count(after, failed.get(f'{name}·sentences'))} | {delta(after)} | "
                f"{after.correct - before.correct:+d} | {100 * before.vs_fp32.agreement:.2f} % → {100 * after.vs_fp32.agreement:.2f} % |"
                if before and after
                else f"| {name} | {split_name} | {count(before, failed.get(f'{name}·rows'))} | {delta(before)} | "
                f"{count(after, failed.get(f'{name}·sentences'))} | {delta(after)} | – | – |"
            )
    if tuned:
        lines += ["", "Accuracy-aware tuning on the tune part: " + "; ".join(f"{label} {what}" for label, what in tuned.items()) + "."]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.save:
        path = Path(__file__).parent / "results" / f"calibration-composition-{isa_class()}.md"
        header = "" if path.exists() else "# Calibration composition (benchmarks/calibration_composition.py)\n\n"
        path.write_text((path.read_text() if path.exists() else header) + table + "\n")
        print(f"appended to {path}")


def count(system, failure: str | None) -> str:
    if system is not None:
        return f"{system.correct}/{system.n}"
    return f"no model: INC met no target on the tune part ({failure})" if failure else "–"


def delta(system) -> str:
    if system is None:
        return "–"
    vs = system.vs_fp32
    low, high = (bound * vs.n for bound in vs.difference_ci95)
    return f"{vs.difference_examples:+d} [{low:+.1f}, {high:+.1f}] {vs.noninferiority.verdict}"


def git_commit() -> str:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    return commit + ("-dirty" if dirty else "")


if __name__ == "__main__":
    main()
