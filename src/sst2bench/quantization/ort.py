"""Shared by every method: the source graph a quantizer sees; and ONNX Runtime int8 through
optimum's ORTQuantizer, static (QDQ or QOperator) or dynamic, used by the ort-* methods."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .base import INT8_TYPES, CalibrationConfig, QuantizeJob
from .isa import IsaAwareConfig
from .recipes import Recipe


@dataclass(frozen=True)
class OrtConfig(IsaAwareConfig):
    """What ONNX Runtime's static and dynamic int8 both read."""

    activation_type: str = "uint8"
    weight_type: str = "int8"
    per_channel: bool = True
    # optimum's exclusions: LayerNorm, GELU, residual Add, embedding Add, the Add before Softmax.
    optimum_exclusions: bool = True

    def checks(self):
        return super().checks() + [(self.weight_type in INT8_TYPES, f"weight_type must be one of {INT8_TYPES}")]


SOURCE_FILE = "model.onnx"


def prepare_source(recipe: Recipe, fp32_dir: Path, work_dir: Path) -> Path:
    """The graph the quantizer sees, in ``work_dir`` with the tokenizer and config beside it.

    With ``recipe.config.optimize_graph``, ONNX Runtime's transformer optimizer fuses
    SkipLayerNorm and BiasGelu first (Intel's ONNX int8 was made from such a graph); with
    ``fuse_attention`` also Attention and EmbedLayerNorm, on the export rewritten by
    ``fusion.bert_form_attention``, so dynamic int8 gets QAttention. Shape inference then gives
    the quantizer every tensor's type (it refuses MatMul outputs without one).
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    work_dir.mkdir(parents=True, exist_ok=True)
    source = fp32_dir / SOURCE_FILE
    if recipe.config.optimize_graph:
        config = json.loads((fp32_dir / "config.json").read_text())
        options = FusionOptions("bert")
        rewritten = work_dir / "bert_form.onnx"
        if recipe.config.fuse_attention:
            source = bert_form(source, rewritten)
            options.use_raw_attention_mask(True)  # Attention reads the 0/1 mask: right for either padding side
        else:  # static int8 has no QAttention; on DistilBERT's own form it matched nothing anyway
            options.enable_attention = options.enable_embed_layer_norm = False
        fused = optimize_model(
            str(source),
            model_type="bert",
            num_heads=config.get("n_heads", 0),
            hidden_size=config.get("dim", 0),
            opt_level=1,
            optimization_options=options,
        )
        attention = fused.get_fused_operator_statistics().get("Attention", 0)
        layers = config.get("n_layers", config.get("num_hidden_layers"))
        if recipe.config.fuse_attention and attention != layers:
            raise UserError(
                f"recipe {recipe.name!r}: ONNX Runtime's optimizer fused {attention} Attention nodes for {layers} layers "
                "(fusion.bert_form_attention does not match this export's attention): the recipe would not be what it says"
            )
        source = work_dir / "fused.onnx"
        fused.save_model_to_file(str(source))
        rewritten.unlink(missing_ok=True)
    source, prepared = source.resolve(), (work_dir / SOURCE_FILE).resolve()
    infer_shapes(source, prepared, work_dir)
    for path in fp32_dir.iterdir():
        if path.is_file() and path.suffix != ".onnx":
            shutil.copy2(path, work_dir / path.name)
    return prepared


def bert_form(source: Path, out: Path) -> Path:
    """``source`` with DistilBERT's attention in BERT's form (``fusion.bert_form_attention``), saved to ``out``."""
    import onnx

    from ..fusion import bert_form_attention

    model = onnx.load(str(source))
    bert_form_attention(model)
    onnx.save(model, str(out))
    return out


def infer_shapes(source: Path, prepared: Path, work_dir: Path) -> None:
    """ONNX Runtime's quantization pre-processing (shape inference), in a child process that works
    in ``work_dir``: on failure ORT saves ``sym_shape_infer_temp.onnx`` into its working directory,
    and this process's directory is the user's."""
    code = (
        "import sys; from onnxruntime.quantization.shape_inference import quant_pre_process; "
        "quant_pre_process(sys.argv[1], sys.argv[2], skip_optimization=True, auto_merge=True)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(source), str(prepared)], cwd=work_dir, capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(
            f"shape inference of {source.name} failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )


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
    """optimum's QuantizationConfig for an ort-static or ort-dynamic recipe."""
    from onnxruntime.quantization import QuantFormat, QuantizationMode, QuantType
    from optimum.onnxruntime.configuration import QuantizationConfig

    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    config = recipe.config
    quant_format = getattr(config, "quant_format", "QOperator")  # dynamic int8 has no format
    return QuantizationConfig(
        is_static=recipe.is_static,
        format=QuantFormat.QDQ if quant_format == "QDQ" else QuantFormat.QOperator,
        mode=QuantizationMode.QLinearOps if recipe.is_static else QuantizationMode.IntegerOps,
        activations_dtype=types[config.activation_type],
        activations_symmetric=config.activation_type == "int8",
        weights_dtype=types[config.weight_type],
        weights_symmetric=True,
        per_channel=config.per_channel,
        reduce_range=config.reduce_range,
        operators_to_quantize=list(config.operators),
        nodes_to_exclude=list(config.fp32_nodes),
    )


def calibration_config(calibration: CalibrationConfig, dataset):
    """optimum's calibration config for ``calibration`` (ORT's calibrators, with their histogram)."""
    from optimum.onnxruntime.configuration import AutoCalibrationConfig

    if calibration.method == "minmax":
        return AutoCalibrationConfig.minmax(dataset)
    if calibration.method == "entropy":
        return AutoCalibrationConfig.entropy(dataset, num_bins=calibration.num_bins, num_quantized_bins=calibration.num_quantized_bins)
    return AutoCalibrationConfig.percentiles(dataset, num_bins=calibration.num_bins, percentile=calibration.percentile)


class BatchReader:
    """ORT's CalibrationDataReader over prepared batches."""

    def __init__(self, batches):
        self.batches = iter(batches)

    def get_next(self):
        return next(self.batches, None)


def calibrate(job: QuantizeJob, operators) -> object:
    """Activation ranges of ``job.source`` on ``job.calibration`` with the recipe's calibrator.

    ORT's histogram calibrators (entropy, percentile) stack a collect call's batches into one
    array, so batches of different lengths (dynamic padding) go one collect call each; minmax and
    equal-length batches go in one call. The augmented model goes to the work folder, not the cwd.
    """
    calibration = job.recipe.calibration
    calibrator = calibration_config(calibration, job.calibration.dataset).create_calibrator(
        onnx_model_path=job.source.as_posix(),
        operators_to_quantize=list(operators),
        augmented_model_name=str(job.work_dir / "augmented_model.onnx"),
    )
    if calibration.method == "minmax" or job.calibration.equal_lengths:
        calibrator.collect_data(BatchReader(job.calibration.batches()))
    else:
        for batch in job.calibration.batches():
            calibrator.collect_data(BatchReader([batch]))
    return calibrator.compute_data()


def quantize_ort(job: QuantizeJob, out_dir: Path | None = None) -> None:
    """Quantize ``job.source`` into ``out_dir`` (default ``job.out_dir``) ``/ model.onnx`` with
    optimum's ORTQuantizer; static recipes calibrate on ``job.calibration``."""
    from optimum.onnxruntime import ORTQuantizer

    recipe, out_dir = job.recipe, out_dir or job.out_dir
    quantizer = ORTQuantizer.from_pretrained(job.source.parent, file_name=job.source.name)
    config = quantization_config(recipe)
    ranges = calibrate(job, config.operators_to_quantize) if recipe.is_static else None
    preprocessor = optimum_exclusions() if recipe.config.optimum_exclusions else None
    quantizer.quantize(config, save_dir=out_dir, calibration_tensors_range=ranges, preprocessor=preprocessor)
    (produced,) = [p for p in out_dir.glob("*.onnx")]
    produced.rename(out_dir / "model.onnx")
