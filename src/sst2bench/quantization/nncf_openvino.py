"""Method ``nncf-openvino``: NNCF post-training static int8 of the exported ONNX graph, run by OpenVINO.

Why this path: Intel steers CPU int8 to OpenVINO now (optimum-intel 2.x dropped its Neural
Compressor integration), and ``nncf.quantize`` with ``ModelType.TRANSFORMER`` is what optimum-intel's
``OVQuantizer`` calls underneath, without optimum-intel's Hub-only calibration helpers. It reads
the graph as exported: ONNX Runtime's fused graph holds com.microsoft ops OpenVINO cannot read.
NNCF picks what to quantize from its transformer patterns (the MatMuls, with SmoothQuant and bias
correction around them); weights are stored as int8 constants, activations get FakeQuantize ops.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..provenance import best_int8_isa, cpu_info
from .base import Method, MethodConfig, QuantizeJob, register_method
from .calibration import INPUT_NAMES, CalibrationData

IR_FILE = "openvino_model.xml"
WEIGHTS_FILE = "openvino_model.bin"
PRESETS = ("mixed", "performance")
# nncf.OverflowFix members, lower case; "auto" chooses from the CPU's ISA (see overflow_fix_for).
OVERFLOW_FIXES = ("auto", "disable", "first_layer", "enable")


def overflow_fix_for(isa: dict) -> str:
    """NNCF's advice (``nncf.OverflowFix``'s docstring): the full 8-bit range where VNNI or AMX
    multiply without saturating; on SSE/AVX2/AVX-512 without VNNI, ``first_layer`` (half range for
    the first convolution's weights). DistilBERT has no convolution, so there ``first_layer`` keeps
    the full range too; ``enable`` (half range for every MatMul) is the recipe to try if that
    saturates."""
    best = best_int8_isa(isa)
    return "disable" if best and best.accumulates_in_32_bits else "first_layer"


@dataclass(frozen=True)
class NncfOpenVinoConfig(MethodConfig):
    """NNCF's own knobs; ``operators`` stays MatMul (NNCF chooses the ops, the op table reports MatMuls)
    and the source graph is the one exported, not fused."""

    optimize_graph: bool = False
    # mixed: symmetric weights, asymmetric activations (NNCF's default for transformers); performance: both symmetric.
    preset: str = "mixed"
    overflow_fix: str = "auto"
    # False runs NNCF's full BiasCorrection (slower, statistics per layer after quantizing the ones before it).
    fast_bias_correction: bool = True

    def checks(self):
        return super().checks() + [
            (
                not self.optimize_graph,
                "NNCF reads the exported graph: OpenVINO cannot read ONNX Runtime's fused ops (optimize_graph=False)",
            ),
            (self.operators == ("MatMul",), "NNCF chooses the quantized ops from its transformer patterns: operators must be ('MatMul',)"),
            (self.preset in PRESETS, f"preset must be one of {PRESETS}"),
            (self.overflow_fix in OVERFLOW_FIXES, f"overflow_fix must be one of {OVERFLOW_FIXES}"),
        ]


@register_method
class NncfOpenVino(Method):
    name = "nncf-openvino"
    config_class = NncfOpenVinoConfig
    is_static = True
    backend = "openvino"
    source_format = "onnx"
    output_file = (IR_FILE, WEIGHTS_FILE)
    # NNCF collects its own statistics (its range estimators per preset), one sentence at a time.
    calibration_fields = ("samples", "max_length", "seed", "padding", "composition")

    def quantize(self, job: QuantizeJob) -> dict:
        return quantize_nncf(job.recipe.config, Path(job.source), Path(job.out_dir), job.calibration)

    def op_table(self, job: QuantizeJob) -> list[dict]:
        import openvino as ov

        return matmul_table(ov.Core().read_model(str(Path(job.out_dir) / IR_FILE)))


def quantize_nncf(config: NncfOpenVinoConfig, source: Path, out_dir: Path, calibration: CalibrationData, isa: dict | None = None) -> dict:
    """Quantize ``source`` (an ONNX file) into ``out_dir/openvino_model.xml``, feeding NNCF one calibration sentence at a
    time (padded only if the calibration says so); return what was chosen and how long it took."""
    import nncf
    import numpy as np
    import openvino as ov

    overflow_fix = overflow_fix_for(isa if isa is not None else cpu_info()["isa"]) if config.overflow_fix == "auto" else config.overflow_fix

    def feed(row):
        return {name: np.asarray([row[name]], dtype=np.int64) for name in INPUT_NAMES}

    started = time.perf_counter()
    quantized = nncf.quantize(
        ov.Core().read_model(str(source)),
        nncf.Dataset(calibration.dataset, feed),
        model_type=nncf.ModelType.TRANSFORMER,
        preset=nncf.QuantizationPreset(config.preset),
        subset_size=len(calibration),
        fast_bias_correction=config.fast_bias_correction,
        ignored_scope=nncf.IgnoredScope(names=list(config.fp32_nodes)) if config.fp32_nodes else None,
        advanced_parameters=nncf.AdvancedQuantizationParameters(overflow_fix=nncf.OverflowFix[overflow_fix.upper()]),
    )
    seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    # compress_to_fp16 would store the fp32 weights that stay (embeddings, LayerNorm) as fp16.
    ov.save_model(quantized, str(out_dir / IR_FILE), compress_to_fp16=False)
    return {"overflow_fix": overflow_fix, "calibration_sentences": len(calibration), "nncf_seconds": round(seconds, 1)}


# Ops between a MatMul input and its quantizer: layout changes, and the weight chain NNCF writes
# (int8 Constant -> Convert -> Subtract zero point -> Multiply scale).
PASSTHROUGH = ("Convert", "Reshape", "Transpose", "Unsqueeze", "Squeeze", "Multiply", "Subtract")


def input_precision(port) -> str:
    """ "int8" when a MatMul input comes from a FakeQuantize or an int8/uint8 constant, else "fp32"."""
    node = port.get_source_output().get_node()
    while True:
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            return "int8"
        if kind == "Constant":
            return "int8" if node.get_output_element_type(0).get_type_name() in ("i8", "u8") else "fp32"
        if kind not in PASSTHROUGH:
            return "fp32"
        node = node.input_value(0).get_node()


# OpenVINO's ONNX frontend splits a Gemm into MatMul + Add and names the MatMul "<Gemm>/WithoutBiases".
GEMM_SUFFIX = "/WithoutBiases"


def matmul_table(model) -> list[dict]:
    """One row per MatMul of an OpenVINO model, named as in the ONNX graph (OpenVINO keeps node
    names as friendly names; a Gemm's MatMul is reported as the Gemm): int8 when both inputs are
    quantized, as an int8 GEMM needs."""
    rows = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        name = op.get_friendly_name()
        gemm = name.endswith(GEMM_SUFFIX)
        rows.append(
            {
                "node": name.removesuffix(GEMM_SUFFIX),
                "op_type": "Gemm" if gemm else "MatMul",
                "precision": "int8" if all(input_precision(port) == "int8" for port in op.inputs()) else "fp32",
            }
        )
    return rows
