"""DistilBERT's exported attention rewritten into the form ONNX Runtime's transformer optimizer fuses.

Its own module, not export.py: the fp32 export's artifacts are keyed by export.py's code, and a
change here should re-make only the graphs that fuse attention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


def bert_form_attention(model: onnx.ModelProto) -> int:
    """Rewrite DistilBERT's eager attention into the form of BERT's, in place; return how many blocks.

    transformers' DistilBERT (``MultiHeadSelfAttention``, 4.45) traces to

        q = Transpose(Reshape(Add(MatMul(x, Wq), bq))) / sqrt(d)
        scores = MatMul(q, K^T)
        scores = Where(Cast(Expand(Reshape(Equal(attention_mask, 0)))), finfo.min, scores)
        Softmax(scores)

    onnxruntime.transformers' FusionAttention matches this ("path3" with the
    ``Cast, Expand, Reshape, Equal`` mask path) but then requires the first mask node to have a
    negative scalar constant input (the check meant for BERT's ``Mul(Sub(1, mask), -10000)``);
    the Cast/Expand has none, so ``fuse`` returns without a word and no Attention is made. This
    rewrites each block to the BERT pattern the fusion accepts ("path1" with the
    ``Mul, Sub, Cast, Unsqueeze, Unsqueeze`` mask path):

        scores = Div(MatMul(q_unscaled, K^T), sqrt(d)) + Mul(Sub(1, Cast(Unsqueeze(Unsqueeze(attention_mask)))), finfo.min)

    which is the same function (unmasked scores + -0.0 are unchanged, masked ones become finfo.min
    exactly since |score| is far below finfo.min's ulp). It also reads the sequence length of the
    position ids from ``Shape(input_ids)`` instead of ``Shape(word_embeddings)`` (the same number):
    EmbedLayerNormalization fuses either way, but otherwise the word-embedding Gather stays in
    the fused graph only to be measured (a whole extra lookup, and the fp32 table kept alive).
    """
    import collections

    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    graph_inputs = {i.name for i in graph.input}
    masks: dict[tuple[str, float], str] = {}
    inserted: dict[int, list] = {}

    def additive_mask(mask_2d: str, fill: float) -> tuple[str, list]:
        key = (mask_2d, fill)
        if key in masks:
            return masks[key], []
        p = f"bert_form_mask_{len(masks)}"
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array([1], np.int64), p + "_axis1"),
                numpy_helper.from_array(np.array([2], np.int64), p + "_axis2"),
                numpy_helper.from_array(np.array(1.0, np.float32), p + "_one"),
                numpy_helper.from_array(np.array(fill, np.float32), p + "_fill"),
            ]
        )
        nodes = [
            helper.make_node("Unsqueeze", [mask_2d, p + "_axis1"], [p + "_u1"], p + "_Unsqueeze1"),
            helper.make_node("Unsqueeze", [p + "_u1", p + "_axis2"], [p + "_u2"], p + "_Unsqueeze2"),
            helper.make_node("Cast", [p + "_u2"], [p + "_float"], p + "_Cast", to=TensorProto.FLOAT),
            helper.make_node("Sub", [p + "_one", p + "_float"], [p + "_keep0"], p + "_Sub"),
            helper.make_node("Mul", [p + "_keep0", p + "_fill"], [p + "_out"], p + "_Mul"),
        ]
        masks[key] = p + "_out"
        return masks[key], nodes

    blocks = 0
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        where = producer.get(softmax.input[0])
        if where is None or where.op_type != "Where" or where.input[1] not in constants:
            continue
        fill = constants[where.input[1]]
        if fill.size != 1 or float(fill) >= 0:
            continue
        matmul_qk = producer.get(where.input[2])
        if matmul_qk is None or matmul_qk.op_type != "MatMul":
            continue
        div_q = producer.get(matmul_qk.input[0])
        if div_q is None or div_q.op_type != "Div" or div_q.input[1] not in constants or len(consumers[div_q.output[0]]) != 1:
            continue
        node = producer.get(where.input[0])  # the "masked out" condition
        while node is not None and node.op_type in ("Cast", "Expand", "Reshape"):
            node = producer.get(node.input[0])
        if node is None or node.op_type != "Equal":
            continue
        mask_2d = [x for x in node.input if x in graph_inputs]
        zero = [x for x in node.input if x in constants]
        if len(mask_2d) != 1 or len(zero) != 1 or float(constants[zero[0]]) != 0.0:
            continue
        mask_name, mask_nodes = additive_mask(mask_2d[0], float(fill))
        matmul_qk.input[0] = div_q.input[0]  # q @ k^T, then / sqrt(d)
        scaled, masked = matmul_qk.output[0] + "_scaled", matmul_qk.output[0] + "_masked"
        inserted[id(where)] = mask_nodes + [
            helper.make_node("Div", [matmul_qk.output[0], div_q.input[1]], [scaled], matmul_qk.name + "_Scale"),
            helper.make_node("Add", [scaled, mask_name], [masked], matmul_qk.name + "_AddMask"),
        ]
        softmax.input[0] = masked
        blocks += 1

    # Shape(Gather(word_embeddings, input_ids)) read only at index 0 or 1 -> Shape(input_ids)
    for node in graph.node:
        whole = not any(a.name == "end" or (a.name == "start" and a.i != 0) for a in node.attribute)
        gather = producer.get(node.input[0]) if node.op_type == "Shape" and node.input and whole else None
        if gather is None or gather.op_type != "Gather" or gather.input[0] not in constants or gather.input[1] not in graph_inputs:
            continue
        readers = consumers[node.output[0]]
        if readers and all(r.op_type == "Gather" and r.input[1] in constants and int(constants[r.input[1]]) in (0, 1) for r in readers):
            node.input[0] = gather.input[1]

    nodes = []
    for node in graph.node:
        nodes.extend(inserted.get(id(node), [node]))
    live, needed = [], {o.name for o in graph.output}
    for node in reversed(nodes):  # drop what no longer reaches an output (the Where's mask arithmetic)
        if any(o in needed for o in node.output):
            live.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(live))
    return blocks
