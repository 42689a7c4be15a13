"""Scoring a candidate ONNX model on the labelled tuning split exactly as reporting scores the
validation split: the run's ``InferenceConfig`` (batch 1, dynamic padding, its truncation, its threads).

Static int8 and fp32 graphs, whose rows do not depend on each other, are scored with sentences of
one token length batched together (no padding): one sentence per call's labels and probabilities
(bit-identical on AVX2's kernels, within 1e-6 in the test on any CPU), in fewer calls. Every trial of
INC and the search is scored so; a graph with dynamic quantization keeps one sentence per call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .base import TuningScore


def onnx_scorer(model_dir: Path, split, inference) -> Callable[[bytes], TuningScore]:
    """``score(model_bytes) -> TuningScore`` on ``split`` (sentence, label), with ``model_dir``'s
    tokenizer and labels and the given inference settings."""
    import numpy as np
    import onnx

    from ..systems import OrtSystem
    from ..systems.base import in_same_length_batches
    from ..systems.onnxruntime import graph_rows_independent

    texts, gold = list(split["sentence"]), tuple(int(label) for label in split["label"])
    batched = in_same_length_batches(inference)

    def score(model_bytes: bytes) -> TuningScore:
        # A graph that mixes the rows of a call (dynamic quantization) keeps one sentence per call.
        settings = batched if graph_rows_independent(onnx.load_from_string(model_bytes)) else inference
        predicted = OrtSystem(model_dir, settings, model_bytes=model_bytes).predict(texts)
        return TuningScore(tuple(p.label for p in predicted), gold, np.asarray([p.probabilities for p in predicted]))

    return score
