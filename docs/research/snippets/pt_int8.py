"""PyTorch int8 on torch 2.13 (torch.ao, deprecated but present): dynamic and static FX for HF DistilBERT."""
from __future__ import annotations
import torch


def dynamic_int8(model, per_channel=False):
    """Dynamic int8 (int8 weights, activations quantized per call): quantized::linear_dynamic."""
    torch.backends.quantized.engine = "x86"          # default on x86; fbgemm is the same kernel family
    if per_channel:
        from torch.ao.quantization import per_channel_dynamic_qconfig
        return torch.ao.quantization.quantize_dynamic(model.eval(), {torch.nn.Linear: per_channel_dynamic_qconfig})
    return torch.ao.quantization.quantize_dynamic(model.eval(), {torch.nn.Linear}, dtype=torch.qint8)


def _hf_quantization_tracer(input_names):
    """torch's QuantizationTracer (leaf-module rules, scopes) + transformers' HFTracer (traces HF models)."""
    from torch.ao.quantization.fx.tracer import QuantizationTracer
    from transformers.utils.fx import HFTracer, get_concrete_args

    class HFQuantizationTracer(QuantizationTracer, HFTracer):
        def trace(self, root, concrete_args=None, **kwargs):
            if concrete_args is None:
                concrete_args = get_concrete_args(root, list(input_names))
            return HFTracer.trace(self, root, concrete_args=concrete_args, **kwargs)

    return HFQuantizationTracer


def static_int8_fx(model, calib_batches, input_names=("input_ids", "attention_mask"), linear_only=False, backend="x86", reduce_range=True):
    """Static int8 via FX graph mode on a HF model.

    prepare_fx traces with torch's QuantizationTracer, which cannot trace HF models (DistilBERT:
    'You cannot specify both input_ids and inputs_embeds'); tracing first with transformers'
    symbolic_trace does not help either, since prepare_fx re-traces the GraphModule and fails
    ('slice indices must be integers'). So swap in a tracer that is both (patched for the call).
    calib_batches: iterable of dicts with the input_names as keys (torch tensors)."""
    import torch.ao.quantization.quantize_fx as qfx
    from torch.ao.quantization import QConfigMapping, get_default_qconfig, get_default_qconfig_mapping

    torch.backends.quantized.engine = backend
    model = model.eval()
    if linear_only:
        qconfig = get_default_qconfig(backend)
        if not reduce_range:   # x86 default: 7-bit activations (reduce_range=True) against u8*s8 saturation without VNNI
            from torch.ao.quantization import QConfig, HistogramObserver, default_per_channel_weight_observer
            qconfig = QConfig(activation=HistogramObserver.with_args(reduce_range=False), weight=default_per_channel_weight_observer)
        # ReLU too: pre_classifier Linear+ReLU is fused to LinearReLU, which needs one qconfig for both
        mapping = QConfigMapping().set_object_type(torch.nn.Linear, qconfig).set_object_type(torch.nn.ReLU, qconfig)
    else:
        import operator
        # the attention mask comparison (mask == 0) would get a HistogramObserver on a bool tensor:
        # NotImplementedError: "linspace_cpu" not implemented for 'Bool'
        mapping = get_default_qconfig_mapping(backend).set_object_type(operator.eq, None).set_object_type(torch.eq, None)
        for method in ("view", "expand_as", "masked_fill"):   # the ops that consume the bool mask
            mapping.set_object_type(method, None)
    calib_batches = list(calib_batches)
    example = tuple(calib_batches[0][name] for name in input_names)
    original = qfx.QuantizationTracer
    qfx.QuantizationTracer = _hf_quantization_tracer(input_names)
    try:
        prepared = qfx.prepare_fx(model, mapping, example)
    finally:
        qfx.QuantizationTracer = original
    with torch.no_grad():
        for batch in calib_batches:
            prepared(*(batch[name] for name in input_names))
    return qfx.convert_fx(prepared)


def static_int8_per_linear(model, calib_batches, backend="x86"):
    """Fallback without whole-model tracing: FX-quantize every nn.Linear on its own
    (quantize -> quantized::linear -> dequantize per Linear); the rest of the model stays fp32 eager."""
    from torch.ao.quantization import QConfigMapping, get_default_qconfig
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = backend
    model = model.eval()
    mapping = QConfigMapping().set_global(get_default_qconfig(backend))
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    for name in names:
        parent, _, attr = name.rpartition(".")
        holder = model.get_submodule(parent) if parent else model
        linear = getattr(holder, attr)
        setattr(holder, attr, prepare_fx(linear, mapping, (torch.randn(1, linear.in_features),)))
    with torch.no_grad():
        for batch in calib_batches:
            model(**batch)
    for name in names:
        parent, _, attr = name.rpartition(".")
        holder = model.get_submodule(parent) if parent else model
        setattr(holder, attr, convert_fx(getattr(holder, attr)))
    return model


def quantized_op_counts(module):
    """Count call sites of quantized ops / modules in a (possibly nested) GraphModule."""
    from collections import Counter
    counts = Counter()
    for m in module.modules():
        if isinstance(m, torch.fx.GraphModule):
            for node in m.graph.nodes:
                if node.op == "call_module":
                    sub = m.get_submodule(node.target)
                    if "quantized" in type(sub).__module__:
                        counts[f"{type(sub).__module__}.{type(sub).__name__}"] += 1
                elif node.op == "call_function" and ("quantize" in str(node.target)):
                    counts[str(node.target)] += 1
    return counts
