"""Stage 20: every recipe of the run applied to the fp32 ONNX export, each int8 model cached by
the content of its source, its recipe, its calibration and tuning data and the quantizer's code.

Accuracy-aware recipes tune on the run's tuning split; calibration draws from train without the
tuning sentences and their phrases. When the run asks (``data.tuning``), each accuracy-aware
recipe is also tuned on the reported split (``<recipe>@val``, Intel's protocol) and on each half
of it (``<recipe>@fold1``/``@fold2``) for a cross-fitted estimate; static recipes are also
calibrated with ``quantize.calibration_seeds`` (``<recipe>@seed<N>``)."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from ..cache import split_digest
from ..config import RunConfig
from ..provenance import provenance
from ..results import QuantizeResult, RecipeResult, read_result, write_result
from ..results.quantize import CrossfitFold
from .common import (
    artifact_cache,
    crossfit_enabled,
    eval_split,
    link,
    load_data,
    model_result,
    reported_halves,
    skipped,
    tuning_split,
)


def int8_key_params(cfg: RunConfig, recipe, inference, train, tuning) -> dict:
    """What decides a recipe's int8 model besides its inputs' files and code: the (resolved) recipe,
    the calibration and tuning data, the scoring protocol, and the ISA class when the CPU decides."""
    from ..provenance import isa_class

    params = {"recipe": recipe.to_dict(), "threads": cfg.quantize.threads}
    if recipe.is_static:
        params["calibration_examples"] = split_digest(train)
    if recipe.needs_tuning:
        params["tuning_examples"] = split_digest(tuning)
        params["inference"] = asdict(inference)
    # A setting resolved from the CPU ("auto" ISA, NNCF's "auto" overflow fix), or a tuning that scores
    # candidates on this CPU's int8 kernels, makes another model on another ISA class.
    if recipe.needs_tuning or "auto" in (getattr(recipe.config, "isa", None), getattr(recipe.config, "overflow_fix", None)):
        params["isa_class"] = isa_class()
    return params


def calibration_study(cfg: RunConfig, chosen, made, splits, fp32_onnx_dir: Path, progress: bool) -> list:
    """params ``quantize.calibration_study``: its recipe (with the run's overrides) at every size and
    composition, each scored on the tune part beside the fp32 graph, where no choice is made."""
    from statistics import mean

    from tqdm.auto import tqdm

    from ..quantization import preset
    from ..quantization.calibration import calibration_sample
    from ..quantization.scoring import onnx_scorer
    from ..results.quantize import CalibrationPoint

    study = cfg.quantize.calibration_study
    base = next((r for r in chosen if r.name == study.recipe), None) or preset(study.recipe, **cfg.quantize.overrides.get(study.recipe, {}))
    score = onnx_scorer(fp32_onnx_dir, splits.tuning, replace(cfg.inference, threads=cfg.quantize.threads))
    fp32 = score((fp32_onnx_dir / "model.onnx").read_bytes())
    points = []
    for recipe in tqdm(study.recipes(base), desc="calibration study", unit="model", disable=not progress):
        record = made(recipe, splits.tuning if recipe.needs_tuning else None, "tuning")
        scored = score((Path(record.path) / "model.onnx").read_bytes())
        drawn = calibration_sample(recipe.calibration, splits.train)
        points.append(
            CalibrationPoint(
                recipe=base.name,
                samples=recipe.calibration.samples,
                composition=recipe.calibration.composition,
                mean_words=round(mean(len(s.split()) for s in drawn["sentence"]), 2),
                correct=scored.correct,
                fp32_correct=fp32.correct,
                agreement=sum(a == b for a, b in zip(scored.predicted, fp32.predicted)) / len(fp32.predicted),
                n=len(fp32.predicted),
                qparams_digest=record.qparams_digest,
            )
        )
    return points


def quantized(cfg: RunConfig, recipe, fp32_onnx_dir: Path, train, tuning) -> tuple[Path, bool]:
    """The int8 model of ``recipe``: from the cache, or made now. Returns (folder, cache hit)."""
    from ..cache import CacheKey
    from ..quantization import get_method
    from ..quantization.run import method_module, quantize, truncated_as_inference

    # Every method gets the run's inference protocol, so tuning scores a candidate as reporting does.
    inference = replace(cfg.inference, threads=cfg.quantize.threads)
    recipe = truncated_as_inference(recipe, inference)  # the key sees the calibration length the model gets
    params = int8_key_params(cfg, recipe, inference, train, tuning)
    # The code that makes this model: the recipe machinery and the method's own module.
    # A method that quantizes the PyTorch model (source_format "torch") reads the fp32 folder too.
    inputs = {"fp32": fp32_onnx_dir, **({"torch": cfg.fp32_dir} if get_method(recipe.method).source_format == "torch" else {})}
    key = CacheKey.make("int8", ("sst2bench.quantization.run", method_module(recipe)), inputs=inputs, params=params)

    def make(out: Path) -> None:
        quantize(recipe, fp32_onnx_dir, out, train, tuning, cfg.quantize.threads, torch_dir=cfg.fp32_dir, inference=inference)

    return artifact_cache().get_or_make(key, make)


def stage_quantize(cfg: RunConfig, recipes=None, progress: bool = True) -> QuantizeResult:
    """Apply every recipe; ``recipes`` (a subset) adds to the results of an earlier sweep."""
    from tqdm.auto import tqdm

    from ..quantization.artifacts import identical_recipes, load_record
    from ..quantization.base import TuningFailed

    out = cfg.runs_dir / "quantize.json"
    model = model_result(cfg)
    if not model.done:
        return skipped(out, QuantizeResult, f"no fp32 model: {model.reason}", cfg)
    data, _ = load_data(cfg)
    splits = tuning_split(cfg, data)
    reported = eval_split(cfg, data)

    def made(recipe, tuning, tuned_on: str, variant_of: str | None = None) -> RecipeResult:
        folder, hit = quantized(cfg, recipe, Path(model.onnx_dir), splits.train, tuning)
        path = link(cfg.models_dir / "int8" / recipe.name, folder)
        record = {k: v for k, v in load_record(folder).items() if k in RecipeResult.model_fields}
        return RecipeResult(
            **{**record, "path": str(path), "cache": "hit" if hit else "made"},
            tuned_on=tuned_on if recipe.needs_tuning else None,
            variant_of=variant_of,
        )

    failures: dict[str, str] = {}

    def variant(recipe, tuning, tuned_on: str, variant_of: str) -> RecipeResult | None:
        """A copy of a recipe; one whose tuning meets no target is recorded as failed, not fatal to the sweep."""
        try:
            return made(recipe, tuning, tuned_on, variant_of)
        except TuningFailed as failure:
            failures[recipe.name] = str(failure)
            return None

    chosen = recipes or cfg.quantize.recipe_objects()
    tuned_on = "validation" if splits.source == "validation" else "tuning"
    records, variants, crossfit = {}, {}, {}
    bar = tqdm(chosen, desc="quantize", unit="recipe", disable=not progress)
    for recipe in bar:
        bar.set_postfix_str(recipe.name)
        records[recipe.name] = made(recipe, splits.tuning, tuned_on)
        for copy in cfg.quantize.seed_variants(recipe) if cfg.studies else []:
            variants[copy.name] = variant(copy, splits.tuning, tuned_on, recipe.name)
        if recipe.needs_tuning and crossfit_enabled(cfg):
            if splits.source != "validation":
                records[f"{recipe.name}@val"] = variant(recipe.replace(name=f"{recipe.name}@val"), reported, "validation", recipe.name)
            first, second = reported_halves(cfg, reported)
            folds = [
                (variant(recipe.replace(name=f"{recipe.name}@fold{fold}"), tune_on, "validation-half", recipe.name), tune_on, score_on)
                for fold, (tune_on, score_on) in enumerate(((first, second), (second, first)), start=1)
            ]
            if all(model is not None for model, _, _ in folds):
                crossfit[recipe.name] = [
                    CrossfitFold(model=model, tuned_on_idx=list(tune_on["idx"]), scored_on_idx=list(score_on["idx"]))
                    for model, tune_on, score_on in folds
                ]
    records = {name: r for name, r in records.items() if r is not None}
    variants = {name: r for name, r in variants.items() if r is not None}
    study = calibration_study(cfg, chosen, made, splits, Path(model.onnx_dir), progress) if cfg.quantize.calibration_study else []
    previous = read_result(out, QuantizeResult, missing_ok=True) if recipes else QuantizeResult()
    merged = {**previous.recipes, **records}
    # Distinct recipes with equal scales and zero points: the options that tell them apart changed
    # nothing the quantizer decides (as entropy with 128/128 bins, which is minmax). A copy tuned on
    # other data (``@val``) counts as its recipe: the same trial may win on either.
    identical = identical_recipes({name: r.model_dump() for name, r in merged.items()})
    for group in identical:
        print(
            f"warning: recipes {', '.join(group)} have identical quantization parameters (scales and zero points): the options that differ between them did not act"
        )
    return write_result(
        out,
        QuantizeResult(
            recipes=merged,
            identical_qparams=identical,
            seed_variants={**previous.seed_variants, **variants},
            crossfit={**previous.crossfit, **crossfit},
            calibration_study=study or previous.calibration_study,
            failed_variants={
                **{name: why for name, why in previous.failed_variants.items() if name not in records and name not in variants},
                **failures,
            },
            provenance=provenance(cfg.to_dict()),
        ),
    )
