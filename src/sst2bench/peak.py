"""How far each system is from this CPU's matrix-multiply limit.

The limit is measured with the runtime itself: ONNX Runtime sessions holding only matrix
multiplies, built with ``onnx.helper``: fp32 ``MatMul``, int8 ``MatMulInteger`` (u8 activations ×
s8 weights) and the dynamic int8 path ``DynamicQuantizeMatMul`` (activations quantized per call).
Each is timed on one large square GEMM and on the model's own weight GEMMs (every MatMul/Gemm of
the fp32 graph with a weight, at the latency sample's mean token count), best of N calls.

A model's multiply-adds per call come from its ONNX graph (shapes inferred at a given token count;
every count is a polynomial of degree two in the tokens, so three inferences give it for any
length), split by the precision each node runs in according to the quantize record's op table.
A system's fraction of the limit is the time its multiply-adds would take at the measured peaks
over its forward-pass time (tokenization excluded).
"""

from __future__ import annotations

import re
import time
from functools import lru_cache

import numpy as np

GEMM_OPS = ("MatMul", "Gemm")
PRECISION_OPS = {"fp32": "MatMul", "int8": "MatMulInteger", "int8-dynamic": "DynamicQuantizeMatMul"}
METHOD = (
    "ONNX Runtime CPU sessions of matrix multiplies only (fp32 MatMul; int8 MatMulInteger u8×s8; int8-dynamic "
    "DynamicQuantizeMatMul), intra-op threads as stated, sequential execution, all graph optimizations; best of {repeats} "
    "calls after one warm-up. 'large': one {size}×{size}×{size} GEMM. 'model': one node per weight GEMM of the fp32 graph "
    "({gemms} nodes) at {rows} rows (the latency sample's mean tokens at batch 1). One multiply-add counts as two operations. "
    "A system's fraction is (int8 MACs / int8 peak + fp32 MACs / fp32 peak) / its forward-pass time; attention-score "
    "MatMuls count at the peak of the precision they run in."
)


def _shaped(model, batch: int, tokens: int):
    """A copy of ``model`` with its inputs fixed to (batch, tokens) and every shape inferred."""
    import copy

    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = copy.deepcopy(model)
    for graph_input in model.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        for dim, value in zip(dims, (batch, tokens)):
            dim.ClearField("dim_param")
            dim.dim_value = value
    return SymbolicShapeInference.infer_shapes(model, auto_merge=True)


def node_macs(model, batch: int, tokens: int) -> dict[str, int]:
    """Multiply-adds of every MatMul and Gemm node of an ONNX model at one input shape, by node name."""
    shaped = _shaped(model, batch, tokens)
    graph = shaped.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*graph.value_info, *graph.input, *graph.output]}
    shapes.update({t.name: list(t.dims) for t in graph.initializer})
    out = {}
    for node in graph.node:
        if node.op_type not in GEMM_OPS:
            continue
        a, b = shapes[node.input[0]], shapes[node.input[1]]
        if node.op_type == "Gemm":
            attrs = {a.name: a.i for a in node.attribute}
            rows, inner = (a[1], a[0]) if attrs.get("transA") else (a[0], a[1])
            cols = b[0] if attrs.get("transB") else b[1]
            out[node.name] = rows * inner * cols
        else:
            # Batched MatMul: broadcast leading dims of both operands, then rows × inner × cols.
            lead = np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])) if len(a) > 2 or len(b) > 2 else ()
            out[node.name] = int(np.prod(lead, dtype=np.int64)) * (a[-2] if len(a) > 1 else 1) * a[-1] * b[-1]
    return out


@lru_cache(maxsize=16)
def mac_polynomials(onnx_path: str) -> dict[str, tuple[float, float, float]]:
    """Per node, (c0, c1, c2) with MACs(tokens) = c0 + c1·tokens + c2·tokens² at batch 1."""
    import onnx

    model = onnx.load(onnx_path)
    f2, f3, f4 = (node_macs(model, 1, t) for t in (2, 3, 4))
    out = {}
    for name in f2:
        c2 = (f4[name] - 2 * f3[name] + f2[name]) / 2
        c1 = f3[name] - f2[name] - 5 * c2
        out[name] = (f2[name] - 2 * c1 - 4 * c2, c1, c2)
    return out


def macs_at(polynomials: dict[str, tuple[float, float, float]], token_counts: list[int]) -> dict[str, float]:
    """Mean multiply-adds per call of every node over calls with these token counts (batch 1)."""
    t = np.asarray(token_counts, dtype=np.float64)
    return {name: float(np.mean(c0 + c1 * t + c2 * t * t)) for name, (c0, c1, c2) in polynomials.items()}


# The exported graph's Q, K and V projections (DistilBERT's q_lin/k_lin/v_lin, BERT's query/key/value):
# a fused Attention node holds them, so an int8 Attention (QAttention) runs them in int8.
QKV_PROJECTION = re.compile(r"/(q_lin|k_lin|v_lin|query|key|value)/MatMul$")


def precision_split(macs: dict[str, float], op_table: list[dict] | None) -> tuple[float, float]:
    """(int8 MACs, fp32 MACs) of the exported graph's nodes: a node is int8 when the op table says
    so, the Q/K/V projections also when the table has an int8 Attention (QAttention computes them in
    int8; its attention scores stay fp32); every other node is fp32."""
    rows = op_table or []
    int8_nodes = {row["node"] for row in rows if row["precision"] == "int8"}
    int8_attention = any(row.get("op_type") == "Attention" and row["precision"] == "int8" for row in rows)
    int8 = sum(v for name, v in macs.items() if name in int8_nodes or (int8_attention and QKV_PROJECTION.search(name)))
    return int8, sum(macs.values()) - int8


def weight_gemms(onnx_path: str) -> list[tuple[int, int]]:
    """(inner, cols) of every MatMul/Gemm of the graph whose second input is a 2-D weight."""
    import onnx

    graph = onnx.load(onnx_path).graph
    weights = {t.name: list(t.dims) for t in graph.initializer if len(t.dims) == 2}
    out = []
    for node in graph.node:
        if node.op_type in GEMM_OPS and node.input[1] in weights:
            inner, cols = weights[node.input[1]]
            transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
            out.append((cols, inner) if transposed else (inner, cols))
    return out


def gemm_graph(precision: str, rows: int, gemms: list[tuple[int, int]], seed: int = 0):
    """An ONNX model of one node per (inner, cols) GEMM, all reading an input of ``rows`` rows."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    op = PRECISION_OPS[precision]
    elem = TensorProto.UINT8 if precision == "int8" else TensorProto.FLOAT
    out_elem = TensorProto.INT32 if precision == "int8" else TensorProto.FLOAT
    inputs = {inner: helper.make_tensor_value_info(f"a{inner}", elem, [rows, inner]) for inner, _ in gemms}
    nodes, initializers, outputs = [], [], []
    for i, (inner, cols) in enumerate(gemms):
        if precision == "fp32":
            weight = rng.standard_normal((inner, cols), dtype=np.float32)
            extra = []
        else:
            weight = rng.integers(-127, 128, (inner, cols), dtype=np.int8)
            extra = [f"s{i}", f"z{i}"] if precision == "int8-dynamic" else [f"az{i}", f"z{i}"]
            if precision == "int8-dynamic":
                initializers.append(numpy_helper.from_array(np.full(cols, 0.01, np.float32), f"s{i}"))
            else:
                initializers.append(numpy_helper.from_array(np.array(128, np.uint8), f"az{i}"))
            initializers.append(numpy_helper.from_array(np.zeros(cols, np.int8), f"z{i}"))
        initializers.append(numpy_helper.from_array(weight, f"w{i}"))
        domain = "com.microsoft" if precision == "int8-dynamic" else ""
        nodes.append(helper.make_node(op, [f"a{inner}", f"w{i}", *extra], [f"y{i}"], name=f"gemm{i}", domain=domain))
        outputs.append(helper.make_tensor_value_info(f"y{i}", out_elem, [rows, cols]))
    graph = helper.make_graph(nodes, "peak", list(inputs.values()), outputs, initializers)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets)


def time_gemms(precision: str, rows: int, gemms: list[tuple[int, int]], threads: int, repeats: int) -> dict:
    """Best and median of ``repeats`` calls of the GEMM graph in ONNX Runtime, and its throughput."""
    import onnxruntime as ort

    from .systems.onnxruntime import session_options

    session = ort.InferenceSession(
        gemm_graph(precision, rows, gemms).SerializeToString(), session_options(threads), providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(1)
    feed = {}
    for graph_input in session.get_inputs():
        shape = graph_input.shape
        feed[graph_input.name] = (
            rng.integers(0, 256, shape, dtype=np.uint8) if precision == "int8" else rng.standard_normal(shape, dtype=np.float32)
        )
    session.run(None, feed)
    times = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        session.run(None, feed)
        times.append(time.perf_counter_ns() - started)
    macs = rows * sum(inner * cols for inner, cols in gemms)
    best = min(times) / 1e6
    return {"macs": macs, "best_ms": best, "median_ms": float(np.median(times)) / 1e6, "gops_per_second": 2 * macs / best / 1e6}


# A second thread must add at least this much throughput at the large shape, or the measurement is
# suspect (another process on the core, a throttled CPU).
MIN_TWO_THREAD_GAIN = 1.5
# Extra rounds of measuring a suspect setting before its flag stands.
REMEASURE_ROUNDS = 2


def suspect_peaks(peaks: list[dict]) -> list[str]:
    """What a peak sweep should not show: 2 threads under ``MIN_TWO_THREAD_GAIN`` x 1 thread at the
    large shape, or the model's small GEMMs beating the large square one (same precision and threads)."""
    by_key = {(p["precision"], p["shape"], p["threads"]): p["gops_per_second"] for p in peaks}
    flags = []
    for (precision, shape, threads), gops in sorted(by_key.items()):
        one = by_key.get((precision, shape, 1))
        if shape == "large" and threads == 2 and one and gops < MIN_TWO_THREAD_GAIN * one:
            flags.append(
                f"{precision} at 2 threads ran {gops / one:.2f}x its 1-thread peak (expected ≥ {MIN_TWO_THREAD_GAIN}x): contended?"
            )
        large = by_key.get((precision, "large", threads))
        if shape == "model" and large and gops > large:
            flags.append(f"{precision} on the model's shapes ({gops:.0f} GOP/s) beat the large shape ({large:.0f}) at {threads} thread(s)")
    return flags


def measure_peak(model_gemms: list[tuple[int, int]], rows: int, threads: list[int], repeats: int, large: int) -> dict:
    """Every precision at the large shape and the model's shapes, at each thread count: MachineLimit
    fields. A sweep that looks contaminated (``suspect_peaks``) is measured again, keeping each
    setting's best, up to ``REMEASURE_ROUNDS`` times; what is still suspect is flagged."""
    import onnxruntime as ort

    from .cache import machine

    settings = [
        (thread_count, precision, shape, shape_rows, gemms)
        for thread_count in threads
        for precision in PRECISION_OPS
        for shape, shape_rows, gemms in (("large", large, [(large, large)]), ("model", rows, model_gemms))
    ]
    best: dict[tuple, dict] = {}
    for _ in range(1 + REMEASURE_ROUNDS):
        for thread_count, precision, shape, shape_rows, gemms in settings:
            timed = time_gemms(precision, shape_rows, gemms, thread_count, repeats)
            row = {"precision": precision, "shape": shape, "rows": shape_rows, "threads": thread_count, **timed}
            key = (precision, shape, thread_count)
            if key not in best or row["gops_per_second"] > best[key]["gops_per_second"]:
                best[key] = row
        if not suspect_peaks(list(best.values())):
            break
    peaks = list(best.values())
    found = machine()
    method = METHOD.format(repeats=repeats, size=large, gemms=len(model_gemms), rows=rows)
    return {
        "method": method,
        "cpu": found["cpu"],
        "isa": found["isa"],
        "runtime": f"onnxruntime {ort.__version__}",
        "repeats": repeats,
        "peaks": peaks,
        "flags": suspect_peaks(peaks),
    }


def peak_fraction(
    system: str, threads: int, tokens: list[int], macs: dict[str, float], op_table, forward_mean_ms: float, limit, int8_kernel: str = "int8"
) -> dict:
    """PeakFraction fields for one system: its MACs split by precision against the measured peaks.

    ``int8_kernel`` names the int8 peak that matches the system's kernels: ``int8`` (MatMulInteger,
    static) or ``int8-dynamic`` (DynamicQuantizeMatMul, which also quantizes activations per call)."""
    int8, fp32 = precision_split(macs, op_table)
    fractions = {}
    for shape in ("model", "large"):
        int8_peak, fp32_peak = (
            limit.gops(int8_kernel, shape, threads) or limit.gops("int8", shape, threads),
            limit.gops("fp32", shape, threads),
        )
        if int8_peak and fp32_peak:
            ideal_ms = 2 * int8 / int8_peak / 1e6 + 2 * fp32 / fp32_peak / 1e6
            fractions[shape] = ideal_ms / forward_mean_ms
    return {
        "system": system,
        "threads": threads,
        "tokens_mean": float(np.mean(tokens)),
        "macs_int8": int8,
        "macs_fp32": fp32,
        "forward_mean_ms": forward_mean_ms,
        "achieved_gops_per_second": 2 * (int8 + fp32) / forward_mean_ms / 1e6,
        "fraction_of_model_shape_peak": fractions.get("model"),
        "fraction_of_large_peak": fractions.get("large"),
    }


def int8_over_fp32(limit, threads: int) -> dict[str, float]:
    """Per measured shape, the best int8 kernel's throughput over fp32's at ``threads``: how much
    faster int8 matrix multiplies can be on this CPU, which caps what an int8 model can gain (only
    its matrix multiplies get faster). Shapes without both an fp32 and an int8 peak are left out."""
    ratios = {}
    for shape in dict.fromkeys(p.shape for p in limit.peaks):
        fp32 = limit.gops("fp32", shape, threads)
        int8 = max((limit.gops(k, shape, threads) or 0.0 for k in PRECISION_OPS if k.startswith("int8")), default=0.0)
        if fp32 and int8:
            ratios[shape] = int8 / fp32
    return ratios
