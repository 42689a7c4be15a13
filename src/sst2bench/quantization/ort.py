"""ONNX Runtime int8 through optimum's ORTQuantizer: static (QDQ or QOperator) and dynamic."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from .recipes import Recipe

SOURCE_FILE = "model.onnx"


def prepare_source(recipe: Recipe, fp32_dir: Path, work_dir: Path) -> Path:
    """The graph the quantizer sees, in ``work_dir`` with the tokenizer and config beside it.

    With ``recipe.optimize_graph``, ONNX Runtime's transformer optimizer fuses Attention,
    SkipLayerNorm and BiasGelu first: Intel's ONNX int8 was made from such a graph, and one
    QAttention op is what makes static int8 fast on CPUs. Shape inference then gives the
    quantizer every tensor's type (it refuses MatMul outputs without one).
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.optimizer import optimize_model

    work_dir.mkdir(parents=True, exist_ok=True)
    source = fp32_dir / SOURCE_FILE
    if recipe.optimize_graph:
        config = json.loads((fp32_dir / "config.json").read_text())
        fused = optimize_model(str(source), model_type="bert", num_heads=config.get("n_heads", 0), hidden_size=config.get("dim", 0), opt_level=1)
        source = work_dir / "fused.onnx"
        fused.save_model_to_file(str(source))
    source, prepared = source.resolve(), (work_dir / SOURCE_FILE).resolve()
    with contextlib.chdir(work_dir):  # on failure ORT dumps sym_shape_infer_temp.onnx into the cwd
        quant_pre_process(str(source), str(prepared), skip_optimization=True, auto_merge=True)
    for path in fp32_dir.iterdir():
        if path.is_file() and path.suffix != ".onnx":
            shutil.copy2(path, work_dir / path.name)
    return prepared


def optimum_exclusions():
    """optimum's preprocessor that keeps LayerNorm, GELU, residual/embedding Adds and the Softmax Add in fp32."""
    from optimum.onnxruntime.preprocessors import QuantizationPreprocessor
    from optimum.onnxruntime.preprocessors.passes import ExcludeGeLUNodes, ExcludeLayerNormNodes, ExcludeNodeAfter, ExcludeNodeFollowedBy

    preprocessor = QuantizationPreprocessor()
    preprocessor.register_pass(ExcludeLayerNormNodes())
    preprocessor.register_pass(ExcludeGeLUNodes())
    preprocessor.register_pass(ExcludeNodeAfter("Add", "Add"))
    preprocessor.register_pass(ExcludeNodeAfter("Gather", "Add"))
    preprocessor.register_pass(ExcludeNodeFollowedBy("Add", "Softmax"))
    return preprocessor


def quantization_config(recipe: Recipe):
    from optimum.onnxruntime.configuration import QuantizationConfig
    from onnxruntime.quantization import QuantFormat, QuantizationMode, QuantType

    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    return QuantizationConfig(
        is_static=recipe.is_static,
        format=QuantFormat.QDQ if recipe.quant_format == "QDQ" else QuantFormat.QOperator,
        mode=QuantizationMode.QLinearOps if recipe.is_static else QuantizationMode.IntegerOps,
        activations_dtype=types[recipe.activation_type],
        activations_symmetric=recipe.activation_type == "int8",
        weights_dtype=types[recipe.weight_type],
        weights_symmetric=True,
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        operators_to_quantize=list(recipe.operators),
        nodes_to_exclude=list(recipe.fp32_nodes),
    )


def calibration_config(recipe: Recipe, dataset):
    from optimum.onnxruntime.configuration import AutoCalibrationConfig

    if recipe.calibration == "minmax":
        return AutoCalibrationConfig.minmax(dataset)
    if recipe.calibration == "entropy":
        return AutoCalibrationConfig.entropy(dataset, num_bins=recipe.num_bins, num_quantized_bins=recipe.num_quantized_bins)
    return AutoCalibrationConfig.percentiles(dataset, num_bins=recipe.num_bins, percentile=recipe.percentile)


def quantize_ort(recipe: Recipe, source: Path, out_dir: Path, work_dir: Path, calibration_dataset=None) -> None:
    """Quantize the graph ``source`` into ``out_dir`` with optimum's ORTQuantizer.

    ``calibration_dataset`` (tokenized ``input_ids``/``attention_mask``) is needed for static
    recipes. optimum's intermediate ``augmented_model.onnx`` goes to ``work_dir``, not the cwd.
    """
    from optimum.onnxruntime import ORTQuantizer

    quantizer = ORTQuantizer.from_pretrained(source.parent, file_name=source.name)
    config = quantization_config(recipe)
    ranges = None
    if recipe.is_static:
        ranges = quantizer.fit(
            dataset=calibration_dataset,
            calibration_config=calibration_config(recipe, calibration_dataset),
            onnx_augmented_model_name=work_dir / "augmented_model.onnx",
            operators_to_quantize=config.operators_to_quantize,
            batch_size=recipe.calibration_batch_size,
        )
    preprocessor = optimum_exclusions() if recipe.optimum_exclusions else None
    quantizer.quantize(config, save_dir=out_dir, calibration_tensors_range=ranges, preprocessor=preprocessor)
