"""Stage 30: every system on the evaluation split, each paired with fp32 PyTorch."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..cache import sha256_of
from ..config import EvalSetConfig, RunConfig
from ..errors import MissingPrerequisite, UserError
from ..paths import project_root
from ..provenance import provenance
from ..results import FP32_TORCH, AccuracyResult, Comparison, EvalSetResult, QuantizeResult, SystemAccuracy, read_result, write_result
from ..results.accuracy import CrossfitEstimate, CrossfitFoldScore, NonInferiority, SeedSpread
from ..systems import SystemSpec
from .common import all_specs, eval_split, load_data, model_result, score, seed_variant_specs, skipped, tuning_split

# Where the tuning split's predictions go, under runs/<run>/predictions/ (an evaluation set may not take this name).
TUNING_PREDICTIONS = "tuning"


def compare_with_sentences(baseline, candidate, split) -> Comparison:
    """``accuracy.compare`` with each disagreement's sentence, for the report."""
    from ..accuracy import compare

    result = compare(baseline, candidate)
    sentences = dict(zip(split["idx"], split["sentence"]))
    for row in result["disagreements"]:
        row["sentence"] = sentences[row["idx"]]
    return Comparison(**result)


def judged(comparisons: dict[str, Comparison], min_relative_accuracy: float) -> dict[str, Comparison]:
    """The comparisons of one split with fp32, each with its verdict at the run's margin and its
    McNemar p Holm-corrected across all of them (the set is every system compared on that split)."""
    from ..noninferiority import holm, margin_for, verdict

    names = list(comparisons)
    adjusted = dict(zip(names, holm([comparisons[name].mcnemar_exact_p for name in names])))
    out = {}
    for name, vs in comparisons.items():
        margin = margin_for(min_relative_accuracy, vs.baseline_correct / vs.n)
        out[name] = vs.model_copy(
            update={
                "mcnemar_holm_p": adjusted[name],
                "noninferiority": NonInferiority(
                    min_relative_accuracy=min_relative_accuracy, margin=margin, verdict=verdict(*vs.difference_ci95, margin)
                ),
            }
        )
    return out


def score_all(cfg: RunConfig, specs, split, predictions_dir: Path, progress: bool = True) -> dict[str, SystemAccuracy]:
    """Every system on ``split`` (from the artifact cache where nothing changed), each paired with
    fp32 PyTorch on the same examples and judged at the run's margin (``judged``); predictions copied
    to ``predictions_dir/<system>.jsonl``."""
    from ..accuracy import load_predictions

    predictions_dir.mkdir(parents=True, exist_ok=True)
    systems = {}
    for spec in specs:
        result, cached = score(cfg, spec, split, progress)
        shutil.copyfile(cached, predictions_dir / f"{spec.name}.jsonl")
        systems[spec.name] = {
            **result,
            "system": spec.name,
            "predictions": str((predictions_dir / f"{spec.name}.jsonl").relative_to(cfg.runs_dir / "predictions")),
            "family": spec.family,
            "path": spec.path,
            "latency": spec.latency,
        }
    baseline = load_predictions(predictions_dir / f"{FP32_TORCH}.jsonl")
    comparisons = {
        name: compare_with_sentences(baseline, load_predictions(predictions_dir / f"{name}.jsonl"), split)
        for name in systems
        if name != FP32_TORCH
    }
    for name, vs in judged(comparisons, cfg.check.min_relative_accuracy).items():
        systems[name]["vs_fp32"] = vs
    return {name: SystemAccuracy(**r) for name, r in systems.items()}


def score_set(cfg: RunConfig, specs, settings: EvalSetConfig, progress: bool = True) -> EvalSetResult:
    """One of the run's other evaluation sets; a file that is not here is skipped with why."""
    from ..tables import is_file_source, load_labelled

    if settings.sha256 and not is_file_source(settings.source):
        raise UserError(
            f"evaluation set {settings.name!r}: sha256 checks a file, and {settings.source!r} is not one (pin a Hub set by revision)"
        )
    source = (project_root() / settings.source).resolve() if is_file_source(settings.source) else settings.source
    try:
        if is_file_source(settings.source) and not Path(source).is_file():
            raise MissingPrerequisite(f"{source} does not exist")
        if settings.sha256 and (found := sha256_of(Path(source))) != settings.sha256:
            raise UserError(f"{source}: sha256 {found}, but params expect {settings.sha256} for set {settings.name!r}: another file?")
        split = load_labelled(
            str(source),
            text_column=settings.text_column,
            label_column=settings.label_column,
            label_map=settings.label_map or None,
            config=settings.config,
            split=settings.split,
            revision=settings.revision,
        )
    except MissingPrerequisite as reason:
        return EvalSetResult(source=str(source), status="skipped", reason=str(reason))
    if settings.limit:
        split = split.select(range(min(settings.limit, len(split))))
    systems = score_all(cfg, specs, split, cfg.runs_dir / "predictions" / settings.name, progress)
    return EvalSetResult(source=str(source), n=len(split), systems=systems)


def seed_spreads(cfg: RunConfig, quantized: QuantizeResult, split, progress: bool = True) -> dict[str, SeedSpread]:
    """Per static recipe with seed variants: its correct count on ``split`` for each calibration seed."""
    import statistics

    counts: dict[str, dict[int, int]] = {}
    for name, spec in seed_variant_specs(cfg).items():
        base = quantized.seed_variants[name].variant_of
        if base not in counts:
            own = quantized.recipes[base]
            own_spec = SystemSpec(base, own.backend, own.path, "int8")
            counts[base] = {own.recipe["calibration"]["seed"]: score(cfg, own_spec, split, progress)[0]["correct"]}
        counts[base][quantized.seed_variants[name].recipe["calibration"]["seed"]] = score(cfg, spec, split, progress)[0]["correct"]
    return {
        base: SeedSpread(
            counts=by_seed, n=len(split), min=min(by_seed.values()), median=statistics.median(by_seed.values()), max=max(by_seed.values())
        )
        for base, by_seed in counts.items()
    }


def crossfit_estimates(cfg: RunConfig, quantized: QuantizeResult, split, progress: bool = True) -> dict[str, CrossfitEstimate]:
    """Per cross-fitted recipe: each fold's model scored on the half it was not tuned on, counts added."""
    estimates = {}
    for name, folds in quantized.crossfit.items():
        scores = []
        for fold in folds:
            wanted = set(fold.scored_on_idx)
            held_out = split.select([row for row, idx in enumerate(split["idx"]) if idx in wanted])
            spec = SystemSpec(fold.model.recipe["name"], fold.model.backend, fold.model.path, "int8")
            result, _ = score(cfg, spec, held_out, progress)
            scores.append(CrossfitFoldScore(tuned_on=len(fold.tuned_on_idx), scored_on=len(held_out), correct=result["correct"]))
        estimates[name] = CrossfitEstimate(
            correct=sum(fold.correct for fold in scores),
            total=sum(fold.scored_on for fold in scores),
            folds=scores,
            tuned_on_reported=f"{name}@val" if f"{name}@val" in quantized.recipes else name,
        )
    return estimates


def stage_accuracy(cfg: RunConfig, progress: bool = True) -> AccuracyResult:
    """Every system on the eval split, on the tuning split and on the run's other evaluation sets;
    static recipes' other calibration seeds and the cross-fitted folds on the eval split."""
    out = cfg.runs_dir / "accuracy.json"
    model = model_result(cfg)
    if not model.done:
        return skipped(out, AccuracyResult, f"no fp32 model: {model.reason}", cfg)
    data, _ = load_data(cfg)
    split = eval_split(cfg, data)
    # The recommendation's evidence: the select part, which no accuracy-aware trial scored.
    splits = tuning_split(cfg, data)
    selection = splits.selection
    specs, skips = all_specs(cfg)
    quantized = read_result(cfg.runs_dir / "quantize.json", QuantizeResult, missing_ok=True)
    return write_result(
        out,
        AccuracyResult(
            split=cfg.data.eval_split,
            n=len(split),
            systems=score_all(cfg, specs, split, cfg.runs_dir / "predictions", progress),
            skipped=skips,
            sets={settings.name: score_set(cfg, specs, settings, progress) for settings in cfg.evaluation_sets},
            tuning=EvalSetResult(
                source=cfg.data.tuning.source,
                part="select" if splits.select is not None else "tune",
                n=len(selection),
                systems=score_all(cfg, specs, selection, cfg.runs_dir / "predictions" / TUNING_PREDICTIONS, progress),
            ),
            seeds=seed_spreads(cfg, quantized, split, progress) if quantized.done else {},
            crossfit=crossfit_estimates(cfg, quantized, split, progress) if quantized.done else {},
            provenance=provenance(cfg.to_dict()),
        ),
    )


def recipe_table(cfg: RunConfig):
    """One row per system: accuracy (count and %), change vs fp32 with its paired interval and verdict,
    the McNemar p (descriptive and Holm-corrected within the split), size, its count on the tuning split's
    select part (where the recommendation chooses), its calibration seeds' spread and its cross-fitted estimate."""
    import pandas as pd

    from ..noninferiority import DESCRIPTIVE, HOLM, NEWCOMBE

    accuracy = read_result(cfg.runs_dir / "accuracy.json", AccuracyResult)
    quantized = read_result(cfg.runs_dir / "quantize.json", QuantizeResult, missing_ok=True).recipes
    sizes = {**model_result(cfg).size_mib, **{name: r.size_mib for name, r in quantized.items()}}
    rows = []
    tuning = accuracy.tuning.systems if accuracy.tuning else {}
    chosen_on = f"{accuracy.tuning.part} part" if accuracy.tuning and accuracy.tuning.part else "tuning"  # where the recommendation chose
    for name, result in accuracy.systems.items():
        vs, on_tuning, spread = result.vs_fp32, tuning.get(name), accuracy.seeds.get(name)
        estimate = next((e for e in accuracy.crossfit.values() if e.tuned_on_reported == name), None)
        rows.append(
            {
                "system": name,
                "correct/n": f"{result.correct}/{result.n}",
                "accuracy %": round(100 * result.accuracy, 2),
                "Δ examples vs fp32": vs.difference_examples if vs else 0,
                "relative change %": round(100 * vs.relative_change, 2) if vs else 0.0,
                "Δ 95 % CI (examples)": (
                    f"{vs.difference_ci95[0] * vs.n:+.1f} to {vs.difference_ci95[1] * vs.n:+.1f}"
                    if vs and vs.difference_ci95_method == NEWCOMBE
                    else None
                ),
                "verdict": vs.noninferiority.verdict if vs and vs.noninferiority else None,
                f"McNemar p ({DESCRIPTIVE})": round(vs.mcnemar_exact_p, 3) if vs else None,
                f"McNemar p ({HOLM})": round(vs.mcnemar_holm_p, 3) if vs and vs.mcnemar_holm_p is not None else None,
                "size MiB": sizes.get(name),
                "tuned on": quantized[name].tuned_on if name in quantized else None,
                f"{chosen_on} correct/n": f"{on_tuning.correct}/{on_tuning.n}" if on_tuning else None,
                f"{chosen_on} agreement %": round(100 * on_tuning.vs_fp32.agreement, 2) if on_tuning and on_tuning.vs_fp32 else None,
                "seeds min–max": f"{spread.min}–{spread.max} ({len(spread.counts)} seeds)" if spread else None,
                "cross-fitted": f"{estimate.correct}/{estimate.total}" if estimate else None,
            }
        )
    return pd.DataFrame(rows)
