"""Automatic mixed precision for ONNX Runtime static int8 (QDQ): which quantized nodes to keep in fp32.

Modelled on Intel Neural Compressor's ``basic`` strategy (``neural_compressor/strategy/basic.py``:
rank ops by their effect on accuracy, then fall the ranked ops back cumulatively until the
accuracy criterion holds), with two changes that make the ranking trustworthy and bound its time:

- Ranking is a sensitivity analysis: each candidate is quantized *alone* in the fp32 graph and
  scored on the first ``search_rank_examples`` tuning sentences by the mean KL divergence of its
  probabilities from fp32's. Falling one node back in an all-int8 graph instead measures it
  against the noise of every other quantized node, so the order it gives changes with the
  calibration seed. Each cumulative step is then scored on the whole tuning split.
- Nothing is recalibrated or requantized: the model is quantized once, and a node falls back by
  reading its original fp32 inputs instead of its DequantizeLinear outputs (its Q/DQ pairs are
  dropped when nothing else reads them), which in QDQ format is exactly that node in fp32.

The search stops at the first step where, on the tuning split, the correct count reaches
``accuracy_target`` of fp32's and the share of examples whose label agrees with fp32's reaches
``agreement_target`` (a net count can hide flips that cancel out), or after ``max_fallbacks``
nodes; a fallback that would take the file past ``size_budget`` of the fp32 graph is skipped. When
no step meets the targets, the step that agrees with fp32 most is kept (the fewest fallbacks on a
tie): agreement is the signal that does not reward flips that happen to land right. Every step is
scored on the tuning split only, never on the reported one.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..accuracy import needed_correct
from .base import QuantizeJob
from .scoring import onnx_scorer


class QdqFallback:
    """An all-int8 QDQ model and its fp32 source: ``model(nodes)`` is the QDQ model with ``nodes`` in fp32.

    A node in fp32 reads its source inputs (the fp32 weights come back from the source graph).
    ONNX Runtime's QDQ quantizer gives a tensor one Q/DQ pair that every consumer reads (the
    residual Add reads the quantized LayerNorm output too); when no int8 node reads a pair any
    more, the other consumers read the float tensor again and the pair is dropped. ``model([])``
    is the all-int8 model as ONNX Runtime wrote it.
    """

    def __init__(self, int8_path: Path, source_path: Path, candidates):
        import onnx

        self.int8 = onnx.load(str(int8_path))
        source = onnx.load(str(source_path))
        self.source_inputs = {node.name: list(node.input) for node in source.graph.node}
        self.source_weights = {t.name: t for t in source.graph.initializer}
        self.candidates = set(candidates)
        self.read_by_int8 = {tensor for node in self.int8.graph.node if node.name in self.candidates for tensor in node.input}

    def model(self, nodes) -> bytes:
        import onnx

        model = onnx.ModelProto()
        model.CopyFrom(self.int8)
        graph = model.graph
        present = {t.name for t in graph.initializer}
        fp32 = set(nodes)
        for node in graph.node:
            if node.name in fp32:
                del node.input[:]
                node.input.extend(self.source_inputs[node.name])
                for tensor in node.input:
                    if tensor in self.source_weights and tensor not in present:
                        graph.initializer.append(self.source_weights[tensor])
                        present.add(tensor)
        quantizers = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "QuantizeLinear"}
        # DequantizeLinear output -> the float tensor its QuantizeLinear read
        origin = {
            node.output[0]: quantizers[node.input[0]]
            for node in graph.node
            if node.op_type == "DequantizeLinear" and node.input[0] in quantizers
        }
        # A pair goes when the int8 nodes that read it all fell back, or it quantized a fallen-back
        # node's output (as an int8 Gather's); pairs no int8 node ever read stay as ONNX Runtime put them.
        int8 = self.candidates - fp32
        needed = {tensor for node in graph.node if node.name in int8 for tensor in node.input}
        fp32_outputs = {tensor for node in graph.node if node.name in fp32 for tensor in node.output}
        dropped = {t for t in origin if t not in needed and (t in self.read_by_int8 or origin[t] in fp32_outputs)}
        for node in graph.node:
            for index, tensor in enumerate(node.input):
                if tensor in dropped:
                    node.input[index] = origin[tensor]
        prune(graph)
        return model.SerializeToString()


def prune(graph) -> None:
    """Drop Q/DQ nodes whose outputs nothing reads, then initializers nothing reads."""
    outputs = {o.name for o in graph.output}
    while True:
        read = {i for node in graph.node for i in node.input} | outputs
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not set(n.output) & read]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {i for node in graph.node for i in node.input} | outputs
    unused = [t for t in graph.initializer if t.name not in read]
    for tensor in unused:
        graph.initializer.remove(tensor)


def mean_kl(reference, candidate) -> float:
    """Mean KL divergence of ``candidate``'s label probabilities from ``reference``'s (rows = examples)."""
    import numpy as np
    from scipy.stats import entropy

    return float(np.mean(entropy(reference, np.clip(candidate, 1e-12, None), axis=1)))


def chosen_step(steps: list[dict], meets) -> tuple[dict, str]:
    """The first step that meets the targets; else the one agreeing with fp32 most (fewest fallbacks on a tie)."""
    met = [s for s in steps if meets(s)]
    if met:
        return met[0], "first step meeting both targets"
    return max(steps, key=lambda s: (s["agree"], -len(s["fallback"]))), "no step met the targets: the step agreeing with fp32 most"


def mib(size: int) -> float:
    return round(size / 2**20, 2)


def search_fallbacks(job: QuantizeJob, int8_path: Path, quantized_nodes: list[dict]) -> dict:
    """Write ``job.out_dir / model.onnx`` with the searched fallbacks; return the search's record.

    ``int8_path``: the recipe's all-int8 QDQ model (quantized once, calibrated once);
    ``quantized_nodes``: op-table rows of its int8 nodes, the candidates.
    """
    from tqdm.auto import tqdm

    config = job.recipe.config
    started = time.perf_counter()
    candidates = [row["node"] for row in quantized_nodes]
    fallback = QdqFallback(int8_path, job.source, candidates)
    fp32_bytes = job.source.read_bytes()
    budget = config.size_budget * len(fp32_bytes)
    fp32 = job.evaluate(fp32_bytes)
    target = needed_correct(config.accuracy_target, fp32.correct)
    agreeing = needed_correct(config.agreement_target, fp32.total)

    def step(nodes: list[str], model: bytes) -> dict:
        score = job.evaluate(model)
        agree = sum(a == b for a, b in zip(score.predicted, fp32.predicted))
        return {"fallback": list(nodes), "correct": score.correct, "agree": agree, "size_mib": mib(len(model))}

    def meets(step: dict) -> bool:
        return step["correct"] >= target and step["agree"] >= agreeing

    all_int8 = fallback.model([])
    steps = [step([], all_int8)]
    ranking, skipped = [], []
    rank_examples = min(config.search_rank_examples, len(job.tuning))
    baseline_seconds = time.perf_counter() - started
    if not meets(steps[0]):
        rank = onnx_scorer(job.source.parent, job.tuning.select(range(rank_examples)), job.inference)
        reference = rank(fp32_bytes).probabilities
        for row in tqdm(quantized_nodes, desc=f"{job.recipe.name}: rank nodes", unit="node", file=sys.stderr, leave=False):
            size = len(fallback.model([row["node"]]))
            if size > budget:  # its fallback alone is over budget: never a candidate, not worth scoring
                skipped.append({"node": row["node"], "size_mib": mib(size), "why": "over the size budget alone"})
                continue
            alone = fallback.model([node for node in candidates if node != row["node"]])
            sensitivity = mean_kl(reference, rank(alone).probabilities)
            ranking.append({"node": row["node"], "op_type": row["op_type"], "sensitivity": sensitivity, "size_mib": mib(size)})
        ranking.sort(key=lambda r: -r["sensitivity"])
    rank_seconds = time.perf_counter() - started - baseline_seconds
    kept: list[str] = []
    for candidate in (r for r in ranking if r["sensitivity"] > 0):
        if meets(steps[-1]) or len(kept) >= config.max_fallbacks:
            break
        model = fallback.model([*kept, candidate["node"]])
        if len(model) > budget:
            skipped.append(
                {"node": candidate["node"], "size_mib": mib(len(model)), "why": "over the size budget with the fallbacks before it"}
            )
            continue
        kept.append(candidate["node"])
        steps.append(step(kept, model))
        tqdm.write(
            f"  {job.recipe.name}: {len(kept)} fp32 node(s): {steps[-1]['correct']} correct (target {target}), "
            f"{steps[-1]['agree']} agree with fp32 (target {agreeing}) of {fp32.total}",
            file=sys.stderr,
        )
    chosen, why = chosen_step(steps, meets)
    (job.out_dir / "model.onnx").write_bytes(fallback.model(chosen["fallback"]))
    kinds = {row["node"]: row["op_type"] for row in quantized_nodes}
    return {
        "strategy": "nodes ranked by sensitivity (KL to fp32 with the node alone int8), fallen back cumulatively in that order",
        "chosen": why,
        "tuning_examples": fp32.total,
        "fp32_correct": fp32.correct,
        "target_correct": target,
        "target_agree": agreeing,
        "target_met": meets(chosen),
        "size_budget_mib": mib(int(budget)),
        "rank_examples": rank_examples if ranking else 0,
        "ranking": ranking,
        "skipped": skipped,
        "steps": steps,
        "fallback_table": [{"node": node, "op_type": kinds[node]} for node in chosen["fallback"]],
        "baseline_seconds": round(baseline_seconds, 1),
        "rank_seconds": round(rank_seconds, 1),
        "search_seconds": round(time.perf_counter() - started, 1),
    }
