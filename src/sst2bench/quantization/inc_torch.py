"""Method ``inc-torch``: Intel Neural Compressor's accuracy-aware static int8 of the PyTorch model.

Why this path: it is how Intel made the headline row of its model card (INC static int8 of the
PyTorch DistilBERT). INC 3.7's 2.x API (``PostTrainingQuantConfig``, ``quantization.fit``) runs
on torch 2.13 through its FX adaptor: a whole-model FX trace of the transformers model fails, so
INC quantizes each ``nn.Linear`` in its own traced module (quantize -> ``quantized::linear`` ->
dequantize) and stores the embeddings as quint8 tables. The kernels are real int8 ones of
PyTorch's x86 quantized engine (fbgemm/oneDNN), not fake-quant. Trials are scored like the report
scores: one sentence per call on the labelled tuning split.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from ..errors import UserError
from .base import Method, QuantizeJob, inc_found_nothing, register_method
from .calibration import CalibrationData
from .isa import IsaAwareConfig

MODEL_FILE = "best_model.pt"
CRITERIA = ("relative", "absolute")
# The module types INC's PyTorch FX adaptor quantizes in this model; LayerNorm and the attention
# arithmetic stay fp32 (quantizing them cost accuracy in the research probe, docs/research).
QUANTIZABLE = ("Linear", "Embedding")
ALGORITHMS = {"minmax": "minmax", "entropy": "kl"}


@dataclass(frozen=True)
class IncTorchConfig(IsaAwareConfig):
    """``operators`` are PyTorch module types; ``fp32_nodes`` are module names (``classifier``,
    ``distilbert.transformer.layer.0.ffn.lin1``) kept fp32 from the start.

    Activations are always 8-bit; ``reduce_range`` gives the Linear weights 7 bits, which the CPU
    decides by default (``isa="auto"``: on AVX2 without VNNI a pair of u8 x s8 products must fit
    FBGEMM's saturating int16 sums). INC left alone would instead give the activations 7 bits there."""

    # Intel's model card: Linear and the embedding tables in int8 (sizes: params/published/).
    operators: tuple[str, ...] = QUANTIZABLE
    optimize_graph: bool = False
    criterion: str = "relative"
    tolerable_loss: float = 0.01
    max_trials: int = 20
    isa: str = "auto"

    def checks(self):
        return super().checks() + [
            (not self.optimize_graph, "inc-torch quantizes the PyTorch model: there is no ONNX graph to optimize (optimize_graph=False)"),
            (
                "Linear" in self.operators and set(self.operators) <= set(QUANTIZABLE),
                f"operators must include Linear, within {QUANTIZABLE}",
            ),
            (self.criterion in CRITERIA, f"criterion must be one of {CRITERIA}"),
            (0 <= self.tolerable_loss < 1, "tolerable_loss must be in [0, 1)"),
            (self.max_trials >= 1, "max_trials must be at least 1"),
        ]


@register_method
class IncTorch(Method):
    name = "inc-torch"
    config_class = IncTorchConfig
    is_static = True
    needs_tuning = True
    backend = "torch-int8"
    source_format = "torch"
    output_file = MODEL_FILE
    # INC's PyTorch calibrators: minmax, or KL (entropy) with its own histogram settings.
    calibration_fields = ("method", "samples", "batch_size", "max_length", "seed", "padding", "composition")

    def quantize(self, job: QuantizeJob) -> dict:
        if job.tuning is None:
            raise UserError(f"recipe {job.recipe.name!r}: INC's accuracy-aware tuning needs a labelled tuning split")
        return quantize_inc_torch(
            job.recipe, Path(job.torch_dir), Path(job.out_dir), Path(job.work_dir), job.calibration, job.tuning, job.inference
        )

    def op_table(self, job: QuantizeJob) -> list[dict]:
        import torch
        from transformers import AutoModelForSequenceClassification

        from ..systems.torch_int8 import load_int8_model

        fp32 = AutoModelForSequenceClassification.from_pretrained(job.torch_dir)
        linears = [name for name, module in fp32.named_modules() if isinstance(module, torch.nn.Linear)]
        return linear_table(load_int8_model(Path(job.out_dir)), linears)


class CalibrationLoader:
    """What INC's PyTorch adaptor iterates: the calibration batches as dicts of torch tensors."""

    def __init__(self, calibration: CalibrationData):
        self.calibration, self.batch_size = calibration, calibration.batch_size

    def __iter__(self):
        import torch

        for batch in self.calibration.batches():
            yield {name: torch.from_numpy(values) for name, values in batch.items()}

    def __len__(self):
        return -(-len(self.calibration) // self.batch_size)


def inc_config(recipe):
    from neural_compressor.config import AccuracyCriterion, PostTrainingQuantConfig, TuningCriterion

    config, calibration = recipe.config, recipe.calibration
    fp32 = {"weight": {"dtype": ["fp32"]}, "activation": {"dtype": ["fp32"]}}
    op_types = {op: fp32 for op in QUANTIZABLE if op not in config.operators}
    op_types["Linear"] = {"activation": {"algorithm": [ALGORITHMS[calibration.method]]}}
    return PostTrainingQuantConfig(
        approach="static",
        backend="default",
        # bf16 would be mixed in on CPUs with AVX512-BF16: this recipe is int8 and fp32 only.
        excluded_precisions=["bf16"],
        calibration_sampling_size=[calibration.samples],
        op_type_dict=op_types,
        op_name_dict={re.escape(name): fp32 for name in config.fp32_nodes} or None,
        accuracy_criterion=AccuracyCriterion(criterion=config.criterion, tolerable_loss=config.tolerable_loss),
        tuning_criterion=TuningCriterion(max_trials=config.max_trials, timeout=0),
    )


# The int8 weight range that keeps a pair of u8 x s8 products inside an int16 (255 x 64 x 2 < 2^15).
SEVEN_BIT_WEIGHTS = {"quant_min": -64, "quant_max": 63}


@contextmanager
def eight_bit_activations(seven_bit_weights: bool) -> Iterator[None]:
    """INC's PyTorch adaptor as this recipe means it: 8-bit activations whatever the CPU, and 7-bit
    Linear weights when ``seven_bit_weights``.

    INC reads the CPU once at import (``REDUCE_RANGE = not vnni``) and without VNNI gives every
    activation 128 levels: that is what cost inc-torch its accuracy on AVX2. Narrowing the weights
    instead avoids the same int16 saturation; the embedding tables (uint8) keep their range."""
    from neural_compressor.adaptor import pytorch as adaptor

    observer = adaptor._observer

    def weight_aware(algorithm, scheme, granularity, dtype, *args, **kwargs):
        made = observer(algorithm, scheme, granularity, dtype, *args, **kwargs)
        return made.with_args(**SEVEN_BIT_WEIGHTS) if seven_bit_weights and dtype == "int8" else made

    with mock.patch.object(adaptor, "REDUCE_RANGE", False), mock.patch.object(adaptor, "_observer", weight_aware):
        yield


def quantize_inc_torch(recipe, torch_dir: Path, out_dir: Path, work_dir: Path, calibration: CalibrationData, tuning, inference) -> dict:
    """Tune on ``tuning`` (labelled), save ``out_dir/best_model.pt``; return every trial's accuracy."""
    import torch
    from neural_compressor import quantization
    from neural_compressor.utils.utility import set_random_seed, set_workspace
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if recipe.calibration.method not in ALGORITHMS:
        raise UserError(
            f"recipe {recipe.name!r}: INC's PyTorch adaptor calibrates with {sorted(ALGORITHMS)}, not {recipe.calibration.method!r}"
        )
    model = AutoModelForSequenceClassification.from_pretrained(torch_dir).eval()
    names = {name for name, _ in model.named_modules()}
    unknown = [name for name in recipe.config.fp32_nodes if name not in names]
    if unknown:
        raise UserError(f"recipe {recipe.name!r}: fp32_nodes {unknown} are not modules of {torch_dir.name} (e.g. classifier)")
    tokenizer = AutoTokenizer.from_pretrained(torch_dir)
    texts, gold = list(tuning["sentence"]), list(tuning["label"])
    trials: list[dict] = []

    def eval_func(candidate) -> float:
        started = time.perf_counter()
        accuracy = accuracy_at_inference(candidate, tokenizer, inference, texts, gold)
        trials.append({"trial": len(trials), "accuracy": accuracy, "seconds": round(time.perf_counter() - started, 2)})
        what = "fp32 baseline" if len(trials) == 1 else f"int8 trial {len(trials) - 1} of at most {recipe.config.max_trials}"
        tqdm.write(f"  {recipe.name}: {what}: accuracy {100 * accuracy:.2f} % on the tuning split", file=sys.stderr)
        return accuracy

    set_workspace(str(work_dir / "nc_workspace"))
    set_random_seed(recipe.calibration.seed)
    logging.getLogger("neural_compressor").setLevel(logging.WARNING)
    threads = torch.get_num_threads()
    started = time.perf_counter()
    try:
        with eight_bit_activations(recipe.config.reduce_range):
            quantized = quantization.fit(model, inc_config(recipe), calib_dataloader=CalibrationLoader(calibration), eval_func=eval_func)
    finally:
        torch.set_num_threads(threads)
    if quantized is None:
        raise inc_found_nothing(recipe, trials)
    out_dir.mkdir(parents=True, exist_ok=True)
    quantized.save(str(out_dir))
    return {
        "trials": trials,
        "baseline_accuracy": trials[0]["accuracy"] if trials else None,
        "tuning_seconds": round(time.perf_counter() - started, 1),
        "quantized_engine": torch.backends.quantized.engine,
    }


def accuracy_at_inference(model, tokenizer, inference, texts, gold) -> float:
    """Accuracy of a candidate as the report scores it (the run's inference settings). Outside
    ``eval_func`` because INC refuses an eval_func whose source contains ``system(``."""
    from ..systems.torch import TorchSystem

    predicted = TorchSystem(model, tokenizer, inference, name="inc-torch-candidate").predict(texts)
    return sum(p.label == g for p, g in zip(predicted, gold)) / len(gold)


def onnx_node_name(module_name: str, op_type: str) -> str:
    """The name the ONNX export gives a Linear's node: module scopes joined by "/", a ModuleList
    index kept on its list (``/distilbert/transformer/layer.0/ffn/lin1/MatMul``)."""
    scopes: list[str] = []
    for part in module_name.split("."):
        if part.isdigit() and scopes:
            scopes[-1] += f".{part}"
        else:
            scopes.append(part)
    return "/" + "/".join(scopes) + f"/{op_type}"


def linear_table(model, linear_names) -> list[dict]:
    """One row per Linear of the fp32 model (``linear_names``), named as the ONNX export names it
    (the classifier head's 2-D Linears export as Gemm), int8 when INC put a quantized Linear there
    (it wraps each in a traced module, so the quantized one sits at or below the fp32 name)."""
    import torch

    quantized = [name for name, module in model.named_modules() if isinstance(module, torch.ao.nn.quantized.Linear)]
    rows = []
    for name in linear_names:
        op_type = "Gemm" if name.split(".")[-1] in ("pre_classifier", "classifier") else "MatMul"
        int8 = any(q == name or q.startswith(name + ".") for q in quantized)
        rows.append({"node": onnx_node_name(name, op_type), "op_type": op_type, "precision": "int8" if int8 else "fp32"})
    return rows
