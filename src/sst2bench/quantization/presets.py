"""Named recipes: one factory each, registered under its function's name with dashes.

A new preset is one more ``@_preset`` function here. Building a preset imports its method's
module (on first use), so listing ``PRESETS`` imports no method.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UserError
from .recipes import Recipe

PRESETS: dict[str, Callable[[], Recipe]] = {}


def _preset(factory: Callable[[], Recipe]) -> Callable[[], Recipe]:
    PRESETS[factory.__name__.replace("_", "-")] = factory
    return factory


def preset(name: str, **overrides) -> Recipe:
    """A named recipe, optionally with flat fields changed (``preset("inc-static", max_trials=5)``)."""
    if name not in PRESETS:
        raise UserError(f"unknown recipe {name!r}; presets: {', '.join(PRESETS)}")
    recipe = PRESETS[name]()
    if recipe.name != name:  # params, results and baselines all use the one name
        raise UserError(f"preset {name!r} makes a recipe named {recipe.name!r}: name the recipe after its function")
    return recipe.replace(**overrides) if overrides else recipe


@_preset
def ort_dynamic() -> Recipe:
    """The ORT docs' recipe for transformers: fuse, then int8 weights per tensor, activations per call."""
    return Recipe.build("ort-dynamic", "ort-dynamic", per_channel=False)


@_preset
def ort_dynamic_pc() -> Recipe:
    """Dynamic with per-channel weights and int8 embeddings: the fast, small, lossless one here."""
    return Recipe.build("ort-dynamic-pc", "ort-dynamic", operators=("MatMul", "Gather"))


@_preset
def ort_dynamic_attn() -> Recipe:
    """ort-dynamic-pc on the graph with attention fused: QAttention and a quantized
    EmbedLayerNormalization replace the fp32 attention ops (reshapes, transposes, softmax, mask) around the int8 GEMMs.
    ONNX Runtime quantizes QAttention's Q/K/V weights 7-bit per channel whatever the recipe says (AttentionQuant)."""
    return Recipe.build(
        "ort-dynamic-attn", "ort-dynamic", operators=("MatMul", "Attention", "EmbedLayerNormalization"), fuse_attention=True
    )


@_preset
def ort_static_qdq() -> Recipe:
    """optimum's static recipe: QDQ, MatMul and Add, optimum's exclusions, raw exported graph."""
    return Recipe.build(
        "ort-static-qdq", "ort-static", quant_format="QDQ", operators=("MatMul", "Add"), optimize_graph=False, per_channel=False
    )


@_preset
def ort_static_qdq_u8s8_pc_rr() -> Recipe:
    """Signed 7-bit weights per channel (no VPMADDUBSW saturation on AVX2 without VNNI), int8 embeddings."""
    return Recipe.build(
        "ort-static-qdq-u8s8-pc-rr",
        "ort-static",
        quant_format="QDQ",
        operators=("MatMul", "Gather"),
        optimize_graph=False,
        reduce_range=True,
    )


@_preset
def ort_static_search() -> Recipe:
    """ort-static-qdq-u8s8-pc-rr's layout with weights for the CPU it runs on (``isa="auto"``) and
    the automatic mixed-precision search: the nodes most sensitive to int8 on the tuning split stay
    fp32 until it keeps all but one in two hundred of fp32's correct answers and agrees with fp32
    on all but one in two hundred examples, within the size budget."""
    return Recipe.build(
        "ort-static-search",
        "ort-static",
        quant_format="QDQ",
        operators=("MatMul", "Gather"),
        optimize_graph=False,
        isa="auto",
        fallback_search=True,
        accuracy_target=0.995,
        agreement_target=0.995,
    )


@_preset
def ort_static_qdq_s8s8() -> Recipe:
    """Signed activations and weights (S8S8), QDQ, per tensor."""
    return Recipe.build(
        "ort-static-qdq-s8s8",
        "ort-static",
        quant_format="QDQ",
        activation_type="int8",
        operators=("MatMul", "Gather"),
        optimize_graph=False,
        per_channel=False,
    )


@_preset
def ort_static_qop_fused() -> Recipe:
    """Fused graph (SkipLayerNorm, BiasGelu), QOperator kernels: the fastest static layout."""
    return Recipe.build("ort-static-qop-fused", "ort-static", operators=("MatMul", "Gather"))


@_preset
def ort_static_qop_fused_rr() -> Recipe:
    """As ort-static-qop-fused with 7-bit weights, which AVX2 without VNNI needs to avoid saturation."""
    return Recipe.build("ort-static-qop-fused-rr", "ort-static", operators=("MatMul", "Gather"), reduce_range=True)


@_preset
def ort_static_qdq_entropy() -> Recipe:
    """KL-divergence calibration with TensorRT's histogram: 2048 bins searched down to 128 levels
    (optimum's 128/128 default can only return the full range, i.e. minmax's)."""
    return ort_static_qdq_u8s8_pc_rr().replace(name="ort-static-qdq-entropy", calibration="entropy", num_bins=2048, num_quantized_bins=128)


@_preset
def ort_static_qdq_percentile() -> Recipe:
    return ort_static_qdq_u8s8_pc_rr().replace(name="ort-static-qdq-percentile", calibration="percentile")


@_preset
def inc_static() -> Recipe:
    """Intel's recipe: INC accuracy-aware static PTQ (1 % relative), QOperator, weights for the CPU
    (isa auto: 8-bit with VNNI/AMX, 7-bit without, activations 8-bit), MatMul only as Intel's ONNX
    model kept Add in fp32."""
    return Recipe.build("inc-static", "inc-static", operators=("MatMul",), optimize_graph=False)


@_preset
def inc_static_tight() -> Recipe:
    """INC held to Intel's published ONNX loss (0.35 points absolute), with int8 embeddings."""
    return Recipe.build(
        "inc-static-tight",
        "inc-static",
        operators=("MatMul", "Gather"),
        optimize_graph=False,
        criterion="absolute",
        tolerable_loss=0.0035,
        max_trials=30,
    )


@_preset
def nncf_openvino() -> Recipe:
    """NNCF post-training int8 run by OpenVINO, with the method's defaults (its overflow fix chosen from the CPU's ISA)."""
    return Recipe.build("nncf-openvino", "nncf-openvino")


@_preset
def inc_torch() -> Recipe:
    """INC's accuracy-aware static int8 of the PyTorch model (Intel's model-card row), with the method's defaults."""
    return Recipe.build("inc-torch", "inc-torch")
