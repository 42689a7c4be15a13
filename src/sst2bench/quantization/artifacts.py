"""What every quantized model carries beside it: recipe, op/fallback table, size, time, provenance."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError

RECORD = "quantization.json"
# Op types that compute in int8 once quantized (QOperator kernels and integer fused ops).
INT8_OP_TYPES = {
    "QLinearMatMul",
    "MatMulInteger",
    "DynamicQuantizeMatMul",
    "QAttention",
    "QGemm",
    "QLinearAdd",
    "QLinearConv",
    "MatMulIntegerToFloat",
    "QEmbedLayerNormalization",
    "QLinearSoftmax",
    "QLinearMul",
}


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


# ------------------------------------------------------------- quantization parameters
#
# Two recipes that differ only in an option that does nothing write models with the same
# quantization parameters. Comparing those parameters (not file bytes, which metadata changes)
# tells whether an option acted: same rule as the project's qparams-digest hook.


def is_qparam(name: str) -> bool:
    """An initializer that holds a scale or a zero point (the names every ONNX quantizer writes)."""
    lowered = name.lower()
    return "scale" in lowered or "zero_point" in lowered


def qparams(model_path: Path | str) -> dict:
    """Every scale and zero-point initializer of a quantized ONNX model, ``{name: numpy array}``, sorted by name."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return {t.name: numpy_helper.to_array(t) for t in sorted(graph.initializer, key=lambda t: t.name) if is_qparam(t.name)}


def qparams_digest(model_path: Path | str) -> str:
    """sha256 over (name, bytes) of every scale/zero-point initializer, sorted by name."""
    import hashlib

    digest = hashlib.sha256()
    for name, array in qparams(model_path).items():
        digest.update(name.encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


# For quantized ops whose inputs are not (tensor, scale, zero point) in a row: which tensor each
# scale/zero-point input belongs to (an input index, or "output").
_QPARAM_OWNERS = {
    "QLinearMatMul": {1: 0, 2: 0, 4: 3, 5: 3, 6: "output", 7: "output"},
    "QLinearConv": {1: 0, 2: 0, 4: 3, 5: 3, 6: "output", 7: "output"},
    "QLinearAdd": {1: 0, 2: 0, 4: 3, 5: 3, 6: "output", 7: "output"},
    "QLinearMul": {1: 0, 2: 0, 4: 3, 5: 3, 6: "output", 7: "output"},
    "QGemm": {1: 0, 2: 0, 4: 3, 5: 3, 7: "output", 8: "output"},
    "MatMulInteger": {2: 0, 3: 1},
    "DynamicQuantizeMatMul": {2: 1, 3: 1},
    "MatMulIntegerToFloat": {2: 0, 3: 1, 4: 0, 5: 1},
    "QAttention": {3: 0, 4: 1, 6: 0, 7: 1},
}


def qparam_roles(model_path: Path | str) -> dict[str, str]:
    """``{qparam initializer name: "weight" | "activation"}``.

    A scale or zero point is a weight's when it is named after a weight initializer (``W_scale``
    beside ``W_quantized``, as ORT and INC write them) or the tensor it quantizes is an initializer
    (an int8 weight behind DequantizeLinear, the weight input of a QOperator op); an activation's
    when that tensor is computed (QuantizeLinear/DequantizeLinear of an activation, a QOperator
    op's activation input or output). Scales only ever multiplied (dynamic int8) count by name.
    """
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    qnames = {name for name in initializers if is_qparam(name)}

    def named_after_a_weight(name: str) -> bool:  # ORT and INC write W_quantized, W_scale, W_zero_point
        base = name.rsplit("_scale", 1)[0] if "_scale" in name else name.rsplit("_zero_point", 1)[0]
        return base in initializers or f"{base}_quantized" in initializers

    roles = {name: "weight" for name in qnames if named_after_a_weight(name)}
    for node in graph.node:
        owners = _QPARAM_OWNERS.get(node.op_type)
        for index, name in enumerate(node.input):
            if name not in qnames or name in roles and roles[name] == "weight":
                continue
            if owners is not None and index in owners:
                owner = owners[index]
            elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                owner = 0
            else:
                continue  # e.g. dynamic int8's Mul of two scales says nothing about whose they are
            roles[name] = "weight" if owner != "output" and node.input[owner] in initializers else "activation"
    return roles


def activation_qparams(model_path: Path | str) -> dict:
    """The scales and zero points of activations only: what calibration decides."""
    roles = qparam_roles(model_path)
    return {name: array for name, array in qparams(model_path).items() if roles.get(name) == "activation"}


def identical_recipes(records_or_paths) -> list[list[str]]:
    """Groups of models whose quantization parameters are all equal, from two or more distinct recipes.

    Takes ``{name: record or model path}`` (a record carries ``qparams_digest`` or ``path``, and a
    copy of a recipe its ``variant_of``) or a list of model paths (named by their folder). Equal
    parameters under different recipes mean the options that tell them apart changed nothing in
    the scales and zero points; copies of one recipe tuned on other data (``@val``, ``@fold<N>``)
    may legitimately keep the same trial, so a recipe and its copies count as one.
    """
    if not isinstance(records_or_paths, dict):
        records_or_paths = {Path(p).parent.name if Path(p).suffix == ".onnx" else Path(p).name: p for p in records_or_paths}
    groups: dict[str, list[str]] = {}
    roots: dict[str, set[str]] = {}
    for name, value in records_or_paths.items():
        digest = value.get("qparams_digest") if isinstance(value, dict) else None
        if digest is None:
            model = _model_file(value["path"] if isinstance(value, dict) else value)
            if not model.is_file():
                continue  # a record whose model is gone cannot be compared
            digest = qparams_digest(model)
        groups.setdefault(digest, []).append(name)
        roots.setdefault(digest, set()).add((value.get("variant_of") if isinstance(value, dict) else None) or name)
    return [sorted(names) for digest, names in groups.items() if len(roots[digest]) > 1]


def _model_file(path: Path | str) -> Path:
    path = Path(path)
    return path if path.suffix == ".onnx" else path / "model.onnx"


def match_nodes(patterns, model_path: Path | str, what: str = "fp32_nodes") -> tuple[str, ...]:
    """Expand node names and fnmatch patterns (``/distilbert/transformer/layer.0/ffn/*/MatMul``)
    to the concrete names of the graph's nodes; any name or pattern that matches none is an error."""
    import fnmatch

    import onnx

    patterns = tuple(patterns)
    if not patterns:
        return ()
    names = [node.name for node in onnx.load(str(model_path), load_external_data=False).graph.node]
    present = set(names)
    matched: list[str] = []
    unknown = []
    for pattern in patterns:
        hits = [pattern] if pattern in present else fnmatch.filter(names, pattern)
        if not hits:
            unknown.append(pattern)
        matched += hits
    if unknown:
        examples = [n for n in names if "MatMul" in n][:4] or names[:4]
        raise UserError(
            f"{what}: {len(unknown)} name(s) match no node of {Path(model_path).name}: {unknown}; "
            f"node names look like {examples} (fnmatch patterns such as '*/ffn/*/MatMul' work too)"
        )
    return tuple(dict.fromkeys(matched))
