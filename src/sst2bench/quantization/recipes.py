"""Quantization recipes: one dataclass for every method, validated up front, with named presets.

A recipe is everything that decides the int8 model, so two runs with equal recipes give equal
models, and the recipe is saved beside the model it made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import UserError

METHODS = ("ort-static", "ort-dynamic", "inc-static")
FORMATS = ("QDQ", "QOperator")
CALIBRATIONS = ("minmax", "entropy", "percentile")
INT8_TYPES = ("uint8", "int8")
CRITERIA = ("relative", "absolute")
# INC's tuning strategies: basic falls back op types then single ops; mse_v2 falls back the ops
# whose int8 output differs most from fp32 first.
STRATEGIES = ("basic", "mse", "mse_v2", "bayesian", "exhaustive", "random", "conservative")


@dataclass(frozen=True)
class Recipe:
    """How to turn the fp32 ONNX graph into int8."""

    name: str
    method: str
    quant_format: str = "QOperator"
    activation_type: str = "uint8"
    weight_type: str = "int8"
    per_channel: bool = True
    reduce_range: bool = False
    operators: tuple[str, ...] = ("MatMul",)
    # optimum's exclusions: LayerNorm, GELU, residual Add, embedding Add, the Add before Softmax.
    optimum_exclusions: bool = True
    # Fuse with ONNX Runtime's transformer optimizer (Attention, SkipLayerNorm, BiasGelu) first.
    optimize_graph: bool = True
    calibration: str = "minmax"
    percentile: float = 99.999
    # Histogram of ORT's entropy and percentile calibrators. Entropy searches clipping thresholds
    # between num_quantized_bins/2 and num_bins/2 bins: with equal values (optimum's default,
    # 128/128) the only candidate is the full range, i.e. minmax. TensorRT's practice: 2048/128.
    # (INC's own KL and percentile calibrators do not take these.)
    num_bins: int = 2048
    num_quantized_bins: int = 128
    # Intel's recipe: sampling size 100 at batch 8 rounds up to 104 train sentences, padded to 128.
    calibration_samples: int = 104
    calibration_batch_size: int = 8
    calibration_max_length: int = 128
    calibration_seed: int = 42
    # Accuracy-aware tuning (INC): Intel's default is 1 % relative loss.
    criterion: str = "relative"
    tolerable_loss: float = 0.01
    max_trials: int = 20
    strategy: str = "basic"
    # SmoothQuant (INC): moves activation outliers into the weights before quantizing; 0 = off.
    smooth_quant_alpha: float = 0.0
    # Nodes forced to stay fp32 (a manual fallback): node names or fnmatch patterns
    # (``/distilbert/transformer/layer.0/ffn/*/MatMul``), each of which must match a node of the
    # graph the quantizer sees; they are expanded to concrete names before quantizing.
    fp32_nodes: tuple[str, ...] = ()

    def __post_init__(self):
        checks = [
            (self.method in METHODS, f"method must be one of {METHODS}"),
            (self.quant_format in FORMATS, f"quant_format must be one of {FORMATS}"),
            (self.activation_type in INT8_TYPES and self.weight_type in INT8_TYPES, f"activation_type and weight_type must be one of {INT8_TYPES}"),
            (self.calibration in CALIBRATIONS, f"calibration must be one of {CALIBRATIONS}"),
            (0 < self.percentile <= 100, "percentile must be in (0, 100]"),
            (self.num_bins >= 1 and self.num_quantized_bins >= 1, "num_bins and num_quantized_bins must be at least 1"),
            (
                self.calibration != "entropy" or self.num_quantized_bins < self.num_bins,
                f"entropy calibration needs num_quantized_bins < num_bins (got {self.num_quantized_bins} >= {self.num_bins}): "
                "with equal values the only threshold it can pick is the full range, which is minmax; "
                "use e.g. num_bins=2048, num_quantized_bins=128",
            ),
            (self.calibration_samples >= 1 and self.calibration_batch_size >= 1, "calibration_samples and calibration_batch_size must be at least 1"),
            (self.calibration_max_length >= 8, "calibration_max_length must be at least 8"),
            (self.criterion in CRITERIA, f"criterion must be one of {CRITERIA}"),
            (0 <= self.tolerable_loss < 1, "tolerable_loss must be in [0, 1)"),
            (self.max_trials >= 1, "max_trials must be at least 1"),
            (self.strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}"),
            (0 <= self.smooth_quant_alpha <= 1, "smooth_quant_alpha must be in [0, 1] (0 = off)"),
            (bool(self.operators), "operators must name at least one op type"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"recipe {self.name!r}: {message}")
        if self.method == "ort-dynamic" and self.activation_type != "uint8":
            raise UserError(f"recipe {self.name!r}: ONNX Runtime dynamic quantization takes uint8 activations")
        object.__setattr__(self, "operators", tuple(self.operators))
        object.__setattr__(self, "fp32_nodes", tuple(self.fp32_nodes))

    @property
    def is_static(self) -> bool:
        return self.method != "ort-dynamic"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Recipe":
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise UserError(f"recipe {values.get('name')!r}: unknown fields {sorted(unknown)}")
        return cls(**values)


def _ort_dynamic() -> Recipe:
    """The ORT docs' recipe for transformers: fuse, then int8 weights per tensor, activations per call."""
    return Recipe("ort-dynamic", "ort-dynamic", per_channel=False, calibration_samples=1)


def _ort_dynamic_per_channel() -> Recipe:
    """Dynamic with per-channel weights and int8 embeddings: the fast, small, lossless one here."""
    return Recipe("ort-dynamic-pc", "ort-dynamic", operators=("MatMul", "Gather"), calibration_samples=1)


def _ort_static_qdq() -> Recipe:
    """optimum's static recipe: QDQ, MatMul and Add, optimum's exclusions, raw exported graph."""
    return Recipe("ort-static-qdq", "ort-static", quant_format="QDQ", operators=("MatMul", "Add"), optimize_graph=False, per_channel=False)


def _ort_static_qdq_u8s8_rr() -> Recipe:
    """Signed 7-bit weights per channel (no VPMADDUBSW saturation on AVX2 without VNNI), int8 embeddings."""
    return Recipe("ort-static-qdq-u8s8-pc-rr", "ort-static", quant_format="QDQ", operators=("MatMul", "Gather"), optimize_graph=False, reduce_range=True)


def _ort_static_mixed() -> Recipe:
    """ort-static-qdq-u8s8-pc-rr with the first two layers' FFN in fp32 (DistilBERT node names):
    the early FFNs carry the activation outliers that per-tensor int8 clips; 29 MiB, 34 % of fp32."""
    ffn = tuple(f"/distilbert/transformer/layer.{layer}/ffn/{lin}/MatMul" for layer in (0, 1) for lin in ("lin1", "lin2"))
    return replace(_ort_static_qdq_u8s8_rr(), name="ort-static-mixed", fp32_nodes=ffn)


def _ort_static_s8s8() -> Recipe:
    """Signed activations and weights (S8S8), QDQ, per tensor."""
    return Recipe("ort-static-qdq-s8s8", "ort-static", quant_format="QDQ", activation_type="int8", operators=("MatMul", "Gather"), optimize_graph=False, per_channel=False)


def _ort_static_qoperator() -> Recipe:
    """Fused graph (SkipLayerNorm, BiasGelu), QOperator kernels: the fastest static layout."""
    return Recipe("ort-static-qop-fused", "ort-static", operators=("MatMul", "Gather"))


def _ort_static_qoperator_rr() -> Recipe:
    """As ort-static-qop-fused with 7-bit weights, which AVX2 without VNNI needs to avoid saturation."""
    return Recipe("ort-static-qop-fused-rr", "ort-static", operators=("MatMul", "Gather"), reduce_range=True)


def _ort_static_entropy() -> Recipe:
    """KL-divergence calibration with TensorRT's histogram: 2048 bins searched down to 128 levels
    (optimum's 128/128 default can only return the full range, i.e. minmax's)."""
    return replace(_ort_static_qdq_u8s8_rr(), name="ort-static-qdq-entropy", calibration="entropy", num_bins=2048, num_quantized_bins=128)


def _ort_static_percentile() -> Recipe:
    return replace(_ort_static_qdq_u8s8_rr(), name="ort-static-qdq-percentile", calibration="percentile")


def _inc_static() -> Recipe:
    """Intel's recipe: INC accuracy-aware static PTQ (1 % relative), QOperator, 8-bit (INC's
    reduce_range cost 30 examples here), MatMul only as Intel's ONNX model kept Add in fp32."""
    return Recipe("inc-static", "inc-static", operators=("MatMul",), optimize_graph=False)


def _inc_static_tight() -> Recipe:
    """INC held to Intel's published ONNX loss (0.35 points absolute), with int8 embeddings."""
    return Recipe("inc-static-tight", "inc-static", operators=("MatMul", "Gather"), optimize_graph=False, criterion="absolute", tolerable_loss=0.0035, max_trials=30)


PRESETS = {
    factory().name: factory
    for factory in (
        _ort_dynamic,
        _ort_dynamic_per_channel,
        _ort_static_qdq,
        _ort_static_qdq_u8s8_rr,
        _ort_static_mixed,
        _ort_static_s8s8,
        _ort_static_qoperator,
        _ort_static_qoperator_rr,
        _ort_static_entropy,
        _ort_static_percentile,
        _inc_static,
        _inc_static_tight,
    )
}


def preset(name: str, **overrides) -> Recipe:
    """A named recipe, optionally with fields changed (``preset("inc-static", max_trials=5)``)."""
    if name not in PRESETS:
        raise UserError(f"unknown recipe {name!r}; presets: {', '.join(PRESETS)}")
    return replace(PRESETS[name](), **overrides) if overrides else PRESETS[name]()
