"""What every quantized model carries beside it: recipe, op/fallback table, size, time, provenance."""

from __future__ import annotations

import json
from pathlib import Path

RECORD = "quantization.json"
# Op types that compute in int8 once quantized (QOperator kernels and integer fused ops).
INT8_OP_TYPES = {
    "QLinearMatMul", "MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "QGemm", "QLinearAdd",
    "QLinearConv", "MatMulIntegerToFloat", "QEmbedLayerNormalization", "QLinearSoftmax", "QLinearMul",
}


def size_mib(path: Path) -> float:
    """Size of a file, or of everything in a folder, in MiB."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 2**20, 2)


def op_table(source_path: Path, quantized_path: Path, op_types) -> list[dict]:
    """For every node of ``op_types`` in the source graph: int8 or fp32 in the quantized graph.

    QOperator rewrites node ``N`` to ``N_quant`` with an int8 op type; QDQ keeps ``N`` and feeds
    every input through DequantizeLinear; a quantized Gather reads an int8 table. Anything else
    stayed fp32 (excluded or fallen back).
    """
    import onnx

    source_graph = onnx.load(str(source_path), load_external_data=False).graph
    source, weights = source_graph.node, {t.name for t in source_graph.initializer}
    quantized = onnx.load(str(quantized_path), load_external_data=False).graph.node
    graph = onnx.load(str(quantized_path), load_external_data=False).graph
    by_name = {node.name: node for node in quantized}
    dequantized = {out for node in quantized if node.op_type == "DequantizeLinear" for out in node.output}
    integer = {t.name for t in graph.initializer if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)}
    table = []
    for node in source:
        if node.op_type not in op_types or (node.op_type == "Gather" and node.input[0] not in weights):
            continue  # Gathers on shapes are bookkeeping, not embedding tables
        rewritten = by_name.get(f"{node.name}_quant") or by_name.get(node.name)
        # A Gather's indices stay integers; only its table (input 0) tells whether it was quantized.
        inputs = [i for i in (rewritten.input[:1] if node.op_type == "Gather" else rewritten.input) if i] if rewritten is not None else []
        int8 = rewritten is not None and (
            rewritten.op_type in INT8_OP_TYPES
            or (rewritten.op_type == node.op_type and all(i in dequantized or i in integer for i in inputs))
        )
        table.append({"node": node.name, "op_type": node.op_type, "precision": "int8" if int8 else "fp32"})
    return table


def summarize_ops(table: list[dict]) -> dict:
    """Counts per op type and precision, e.g. ``{"MatMul": {"int8": 36, "fp32": 2}}``."""
    summary: dict[str, dict[str, int]] = {}
    for row in table:
        counts = summary.setdefault(row["op_type"], {"int8": 0, "fp32": 0})
        counts[row["precision"]] += 1
    return summary


def save_record(out_dir: Path, record: dict) -> dict:
    (Path(out_dir) / RECORD).write_text(json.dumps(record, indent=2, default=str))
    return record


def load_record(model_dir: Path) -> dict | None:
    path = Path(model_dir) / RECORD
    return json.loads(path.read_text()) if path.is_file() else None
