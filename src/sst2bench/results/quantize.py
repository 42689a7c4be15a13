"""Stage 20's result: one record per int8 recipe."""

from __future__ import annotations

from typing import Literal

from .core import Schema, StageResult


class RecipeResult(Schema):
    """One int8 model: its recipe, which ops run in int8, size, time and INC's trials."""

    path: str
    # The system backend that loads ``path`` (a registered name in sst2bench.systems).
    backend: str = "onnxruntime"
    recipe: dict
    source_graph: str
    ops: dict[str, dict[str, int]]
    fp32_fallback: list[dict]
    size_mib: float
    fp32_size_mib: float
    quantization_seconds: float
    tuning: dict | None = None
    qparams_digest: str | None = None
    cache: str = ""
    # For accuracy-aware recipes: the split its choices were made on ("tuning", "validation" (the
    # reported split: Intel's protocol, marked in the report) or "validation-half" (a cross-fit fold)).
    tuned_on: Literal["tuning", "validation", "validation-half"] | None = None
    # For a copy of a recipe (another calibration seed, a cross-fit fold): the recipe it copies.
    variant_of: str | None = None
    # What the recipe's ``isa`` field resolved to (``quantization.isa.IsaChoice.to_dict``); None without one or with "none".
    isa: dict | None = None
    # The model's own provenance, from its record: its CPU is the machine that quantized it, which for
    # a cache hit may not be the one this run measured on. Empty in results written before it was kept.
    provenance: dict = {}


class CrossfitFold(Schema):
    """One fold of 2-fold cross-fitting: a model tuned on ``tuned_on_idx``, to be scored on ``scored_on_idx``."""

    model: RecipeResult
    tuned_on_idx: list[int]
    scored_on_idx: list[int]


class CalibrationPoint(Schema):
    """One model of the calibration study: its recipe recalibrated with ``samples`` sentences of one
    ``composition``, scored on the tuning split's tune part (``n``) beside the fp32 graph there."""

    recipe: str
    samples: int
    composition: str
    mean_words: float  # of the calibration sentences drawn
    correct: int
    fp32_correct: int
    agreement: float  # share of the tune part where it predicts the fp32 graph's label
    n: int
    qparams_digest: str | None = None


class QuantizeResult(StageResult):
    recipes: dict[str, RecipeResult] = {}
    # Groups of differently named recipes whose quantization parameters are all equal.
    identical_qparams: list[list[str]] = []
    # Static recipes calibrated with the run's other calibration seeds: scored, never timed.
    seed_variants: dict[str, RecipeResult] = {}
    # Accuracy-aware recipes re-tuned on each half of the reported split (params data.tuning).
    crossfit: dict[str, list[CrossfitFold]] = {}
    # Copies (``@val``, ``@fold<N>``, ``@seed<N>``) whose tuning met no target, with INC's message;
    # a recipe with a failed fold has no cross-fitted estimate.
    failed_variants: dict[str, str] = {}
    # params quantize.calibration_study: empty when the run asks for none.
    calibration_study: list[CalibrationPoint] = []

    def table(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "recipe": name,
                    "int8 ops": sum(c["int8"] for c in r.ops.values()),
                    "fp32 fallback": len(r.fp32_fallback),
                    "size MiB": r.size_mib,
                    "seconds": r.quantization_seconds,
                    "cache": r.cache,
                }
                for name, r in self.recipes.items()
            ]
        )
