"""OpenVINO + NNCF helpers (tested with openvino 2026.4.1, nncf 3.4.0)."""
from __future__ import annotations
from collections import Counter
from pathlib import Path
import numpy as np


def onnx_to_ir(onnx_path, ir_path):
    """ONNX (optimum export, dynamic batch/sequence) -> OpenVINO IR (.xml + .bin), fp32 weights kept."""
    import openvino as ov
    model = ov.convert_model(str(onnx_path))          # or ov.Core().read_model(onnx_path)
    ov.save_model(model, str(ir_path), compress_to_fp16=False)   # default True would store fp16 weights
    return Path(ir_path)


def compile_cpu(model_or_path, threads=1):
    """Compile for CPU with the thread count pinned, one stream, latency hint, fp32 inference precision."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints
    core = ov.Core()
    model = core.read_model(str(model_or_path)) if isinstance(model_or_path, (str, Path)) else model_or_path
    config = {
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        props.inference_num_threads: threads,
        props.num_streams: 1,
        hints.enable_cpu_pinning: False,          # don't bind threads to cores on a shared machine
        hints.inference_precision: ov.Type.f32,   # else bf16 is used on AVX512_BF16/AMX CPUs for fp32 models
        hints.enable_hyper_threading: False,
    }
    return core.compile_model(model, "CPU", config)


def predict_logits(compiled, tokenizer, texts):
    enc = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
    feeds = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}
    return compiled(feeds)[compiled.output(0)]


def nncf_int8(ov_model, tokenizer, calib_texts, overflow_fix=None, preset=None, subset_size=300):
    """Static int8 (NNCF PTQ) of an OpenVINO model. overflow_fix None = NNCF default (FIRST_LAYER)."""
    import nncf
    def transform(text):
        enc = tokenizer([text], truncation=True, return_tensors="np")
        return {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}
    adv = nncf.AdvancedQuantizationParameters(overflow_fix=overflow_fix) if overflow_fix is not None else None
    return nncf.quantize(
        ov_model,
        nncf.Dataset(list(calib_texts), transform),
        model_type=nncf.ModelType.TRANSFORMER,
        preset=preset,                      # None -> MIXED for TRANSFORMER (sym weights, asym activations)
        subset_size=min(subset_size, len(calib_texts)),
        advanced_parameters=adv,
    )


def _rt(rt, key):
    return rt[key].astype(str) if key in rt else ""


def quantized_matmuls(ov_model):
    """Before compilation (IR as saved by NNCF): for every MatMul, what feeds each input.

    NNCF marks activations with FakeQuantize and stores weights as an i8 Constant -> Convert ->
    Multiply (scale) chain. Returns [(name, [kind of input 0, kind of input 1])], kind in
    {"FakeQuantize", "i8-weight", "u8-weight", "fp32"}."""
    passthrough = {"Convert", "Reshape", "Transpose", "Unsqueeze", "Squeeze", "Multiply", "Subtract"}
    out = []
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        kinds = []
        for value in op.inputs():
            node, kind = value.get_source_output().get_node(), "fp32"
            while True:
                t = node.get_type_name()
                if t == "FakeQuantize":
                    kind = "FakeQuantize"; break
                if t == "Constant":
                    et = node.get_output_element_type(0).get_type_name()
                    kind = f"{et}-weight" if et in ("i8", "u8") else "fp32"; break
                if t not in passthrough:
                    break
                node = node.input_value(0).get_node()
            kinds.append(kind)
        out.append((op.get_friendly_name(), kinds))
    return out


def runtime_matmuls(compiled, warmup_inputs=None):
    """After compilation: the runtime nodes that execute the model's MatMuls, with their precision.

    The CPU plugin renames and fuses: a MatMul with constant weights becomes 'FullyConnected'
    (named after the fused bias Add in fp32); the attention MatMuls are often fused into a
    'Subgraph' (snippets MHA) node. With dynamic shapes the kernel ('primitiveType') is chosen at
    the first inference -- before it, it reads 'undef_*' -- so pass ``warmup_inputs`` (a feed
    dict) or run one inference first. A Subgraph's primitive ('jit_avx512_i8') tells the precision it
    starts in, not that every MatMul inside is int8: NNCF leaves softmax(QK)·V in fp32, so take the
    per-MatMul truth from quantized_matmuls(ir) and use this to confirm int8 kernels ran. Returns a list of
    (runtime name, layerType, runtimePrecision, primitiveType, matmuls absorbed, int8?)."""
    if warmup_inputs is not None:
        compiled(warmup_inputs)
    rows = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        layer, prec, prim = _rt(rt, "layerType"), _rt(rt, "runtimePrecision"), _rt(rt, "primitiveType")
        if layer in ("FullyConnected", "MatMul", "Gemm"):
            n = 1
        elif layer == "Subgraph":
            n = sum(1 for name in _rt(rt, "originalLayersNames").split(",") if name.rsplit("/", 1)[-1].startswith("MatMul"))
        else:
            continue
        if n:
            int8 = prim.lower().endswith(("_i8", "_u8"))   # brgemm_avx512_I8, jit_avx512_i8, brgemm_avx512_amx_I8 ...
            rows.append((op.get_friendly_name(), layer, prec, prim, n, int8))
    return rows


def runtime_summary(compiled, warmup_inputs=None):
    """{(layerType, primitiveType): matmuls} and (int8 matmuls, all matmuls)."""
    rows = runtime_matmuls(compiled, warmup_inputs)
    summary = Counter()
    for _, layer, _, prim, n, _ in rows:
        summary[(layer, prim)] += n
    return dict(summary), (sum(r[4] for r in rows if r[5]), sum(r[4] for r in rows))
