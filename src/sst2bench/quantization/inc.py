"""Method ``inc-static``: Intel Neural Compressor accuracy-aware static post-training quantization with fp32 fallback.

Why this path: it is Intel's own flow for the published ONNX int8 model (INC's 2.x API with its
ONNX Runtime adaptor, QOperator, on the graph fused by ONNX Runtime's transformer optimizer).
INC 3.7 is the last release that still has that API; its PyTorch 3.x path fails on torch 2.13,
and INC 3.10's PT2E int8 was slower than fp32 on these AVX2 machines (DESIGN.md). Tuning starts
from everything in ``config.operators`` quantized and falls ops back to fp32 until the accuracy
criterion (default: at most 1 % relative loss) holds.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .base import FORMATS, NO_STATIC_ATTENTION, Method, QuantizeJob, inc_found_nothing, register_method
from .isa import IsaAwareConfig
from .recipes import Recipe

CRITERIA = ("relative", "absolute")
# INC's tuning strategies: basic falls back op types then single ops; mse_v2 falls back the ops
# whose int8 output differs most from fp32 first.
# INC's tuning strategies. "auto" is INC's default and Intel's recipe (conservative, then basic);
# "mse" is left out: on this model it fails inside INC (no quantized embedding Slice to compare).
STRATEGIES = ("auto", "basic", "mse_v2", "bayesian", "exhaustive", "random", "conservative")
# Op types INC's ONNX adaptor can quantize; those outside the recipe's operators stay fp32.
INC_QUANTIZABLE = (
    "MatMul",
    "Attention",
    "Add",
    "Mul",
    "Gather",
    "EmbedLayerNormalization",
    "Gemm",
    "Concat",
    "Split",
    "Softmax",
    "Transpose",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
)


@dataclass(frozen=True)
class IncStaticConfig(IsaAwareConfig):
    """INC's weights are always int8, symmetric; its KL and percentile calibrators take no
    histogram settings, so its calibration reads only method, samples, batch size, length, seed.

    Its QOperator model runs ONNX Runtime's u8 x s8 kernels, so by default the CPU decides the
    weights' range (``isa="auto"``): 8-bit where VNNI/AMX accumulate in 32 bits, 7-bit on AVX2,
    where pairs of full-range products can saturate VPMADDUBSW's int16 sums. ``reduce_range`` means
    what it means for ONNX Runtime's quantizer: 7-bit weights, activations kept 8-bit (INC's own
    flag would narrow the activations too; see ``seven_bit_weights``)."""

    quant_format: str = "QOperator"
    activation_type: str = "uint8"
    per_channel: bool = True
    isa: str = "auto"
    # Accuracy-aware tuning: Intel's default is 1 % relative loss.
    criterion: str = "relative"
    tolerable_loss: float = 0.01
    max_trials: int = 20
    strategy: str = "auto"
    # SmoothQuant: moves activation outliers into the weights before quantizing; 0 = off.
    smooth_quant_alpha: float = 0.0

    def checks(self):
        return super().checks() + [
            (self.quant_format in FORMATS, f"quant_format must be one of {FORMATS}"),
            (not self.fuse_attention, NO_STATIC_ATTENTION),
            # INC's ONNX Runtime adaptor lists uint8 activations only (adaptor/onnxrt.yaml) and
            # ignores another dtype asked for, so int8 would be a recipe that lies.
            (self.activation_type == "uint8", "INC's ONNX Runtime adaptor quantizes activations as uint8 only (activation_type='uint8')"),
            (self.criterion in CRITERIA, f"criterion must be one of {CRITERIA}"),
            (0 <= self.tolerable_loss < 1, "tolerable_loss must be in [0, 1)"),
            (self.max_trials >= 1, "max_trials must be at least 1"),
            (self.strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}"),
            (0 <= self.smooth_quant_alpha <= 1, "smooth_quant_alpha must be in [0, 1] (0 = off)"),
        ]


@register_method
class IncStatic(Method):
    name = "inc-static"
    config_class = IncStaticConfig
    is_static = True
    needs_tuning = True
    calibration_fields = ("method", "samples", "batch_size", "max_length", "seed", "padding", "composition")

    @classmethod
    def calibration_conflict(cls, config: IncStaticConfig, calibration) -> str | None:
        if config.smooth_quant_alpha and calibration.padding != "max_length":
            # INC's calib_smooth stacks the activations of every calibration batch into one array.
            return "smooth_quant_alpha needs calibration_padding='max_length' (INC's SmoothQuant statistics need batches of one length)"
        return None

    def quantize(self, job: QuantizeJob) -> dict:
        if job.evaluate is None:
            raise ValueError("INC's accuracy-aware tuning needs a labelled tuning split")
        return quantize_inc(job.recipe, job.source, job.out_dir, job.work_dir, job.calibration, job.evaluate)


class CalibrationLoader:
    """The ``(inputs, label)`` batches INC's ONNX adaptor iterates (a ``CalibrationData``'s); labels are unused."""

    def __init__(self, calibration):
        self.calibration = calibration
        self.batch_size = calibration.batch_size

    def __iter__(self):
        for batch in self.calibration.batches():
            yield batch, None

    def __len__(self):
        return math.ceil(len(self.calibration) / self.batch_size)


def inc_config(recipe: Recipe):
    """INC's PostTrainingQuantConfig for an inc-static recipe."""
    from neural_compressor.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

    config, calibration = recipe.config, recipe.calibration
    fp32 = {"weight": {"dtype": ["fp32"]}, "activation": {"dtype": ["fp32"]}}
    op_types = {op: fp32 for op in INC_QUANTIZABLE if op not in config.operators}
    granularity = "per_channel" if config.per_channel else "per_tensor"
    algorithm = {"minmax": "minmax", "entropy": "kl", "percentile": "percentile"}[calibration.method]
    for op in config.operators:
        op_types[op] = {
            "weight": {"dtype": ["int8"], "scheme": ["sym"], "granularity": [granularity], "algorithm": ["minmax"]},
            "activation": {"dtype": [config.activation_type], "scheme": ["asym"], "algorithm": [algorithm]},
        }
    # Keep the classifier head (two Gemms) in fp32: INC would turn them into MatMuls and
    # quantize the logits themselves.
    recipes = {"graph_optimization_level": "ENABLE_BASIC", "gemm_to_matmul": False}
    if config.smooth_quant_alpha:
        recipes.update(smooth_quant=True, smooth_quant_args={"alpha": config.smooth_quant_alpha})
    return PostTrainingQuantConfig(
        approach="static",
        quant_format=config.quant_format,
        calibration_sampling_size=[calibration.samples],
        op_type_dict=op_types,
        # INC reads op_name_dict keys as regular expressions (fullmatch): escape the concrete names.
        op_name_dict={re.escape(name): fp32 for name in config.fp32_nodes} or None,
        # Activations keep 8 bits whatever the weights get (seven_bit_weights narrows the weights).
        reduce_range=False,
        recipes=recipes,
        accuracy_criterion=AccuracyCriterion(criterion=config.criterion, tolerable_loss=config.tolerable_loss),
        # INC runs a named strategy only at quant_level 1; quant_level "auto" (its default) runs
        # conservative then basic whatever the strategy says, and "conservative" alone is level 0,
        # not a strategy name TuningCriterion accepts.
        quant_level={"auto": "auto", "conservative": 0}.get(config.strategy, 1),
        tuning_criterion=TuningCriterion(
            strategy="basic" if config.strategy in ("auto", "conservative") else config.strategy, max_trials=config.max_trials, timeout=0
        ),
    )


@contextmanager
def seven_bit_weights(enabled: bool) -> Iterator[None]:
    """Quantize INC's weights to 7 bits and leave its activations at 8.

    INC's ``reduce_range`` narrows both: its calibrator gives uint8 activations 128 levels too. What a
    CPU without VNNI needs is only that a pair of u8 x s8 products fits VPMADDUBSW's int16, which
    7-bit weights guarantee; halving the activation levels as well cost accuracy on the ``ci``
    stand-in (``benchmarks/inc_first_trial.py``). INC's quantizer reads its ``reduce_range`` only for
    weight initializers, so setting it there alone does exactly that."""
    if not enabled:
        yield
        return
    from neural_compressor.adaptor.ox_utils.quantizer import Quantizer

    original = Quantizer.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.reduce_range = True

    Quantizer.__init__ = init
    try:
        yield
    finally:
        Quantizer.__init__ = original


def quantize_inc(recipe: Recipe, source: Path, out_dir: Path, work_dir: Path, calibration, evaluate: Callable) -> dict:
    """Tune and save ``out_dir/model.onnx``; ``evaluate(model_bytes) -> TuningScore`` scores each trial.

    Returns the tuning history: every evaluated trial's accuracy and the time taken.
    """
    import onnx
    from neural_compressor import quantization
    from neural_compressor.utils.utility import set_random_seed, set_workspace
    from tqdm.auto import tqdm

    set_workspace(str(work_dir / "nc_workspace"))
    set_random_seed(recipe.calibration.seed)
    trials: list[dict] = []

    def eval_func(model) -> float:
        started = time.perf_counter()
        score = evaluate(model.SerializeToString() if hasattr(model, "SerializeToString") else onnx.load(model).SerializeToString())
        accuracy = score.accuracy
        trials.append(
            {"trial": len(trials), "accuracy": accuracy, "correct": score.correct, "seconds": round(time.perf_counter() - started, 2)}
        )
        what = "fp32 baseline" if len(trials) == 1 else f"int8 trial {len(trials) - 1} of at most {recipe.config.max_trials}"
        tqdm.write(f"  {recipe.name}: {what}: accuracy {100 * accuracy:.2f} % on the tuning split", file=sys.stderr)
        return accuracy

    logging.getLogger("neural_compressor").setLevel(logging.WARNING)
    started = time.perf_counter()
    with seven_bit_weights(recipe.config.reduce_range):
        quantized = quantization.fit(
            onnx.load(str(source)),
            inc_config(recipe),
            calib_dataloader=CalibrationLoader(calibration),
            eval_func=eval_func,
        )
    if quantized is None:
        raise inc_found_nothing(recipe, trials)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(quantized.model, str(out_dir / "model.onnx"))
    return {
        "trials": trials,
        "baseline_accuracy": trials[0]["accuracy"] if trials else None,
        "tuning_seconds": round(time.perf_counter() - started, 1),
    }
