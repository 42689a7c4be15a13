"""Attention fusion (issue 21): DistilBERT's export rewritten into BERT's attention form, fused by
ONNX Runtime's optimizer into Attention and EmbedLayerNormalization, with the function unchanged."""

from __future__ import annotations

import collections
import json

import numpy as np
import onnx
import pytest

from sst2bench.errors import UserError
from sst2bench.quantization import Recipe, preset
from sst2bench.quantization.ort import prepare_source

SENTENCES = ["good film .", "a very dull , boring mess that goes on and on", "it 's not great but fun !", "awful", "charming"]


def op_counts(path) -> collections.Counter:
    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def logits(model_path, tokenizer_dir, padding_side: str) -> np.ndarray:
    """Logits of ``SENTENCES`` in one padded batch, one thread."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tokenizer.padding_side = padding_side
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    encoded = tokenizer(SENTENCES, padding=True, return_tensors="np")
    feeds = {i.name: encoded[i.name].astype(np.int64) for i in session.get_inputs()}
    return session.run(None, feeds)[0]


@pytest.fixture(scope="module")
def fused(signal_model, tmp_path_factory):
    """The signal model's export with attention fused, as ``fuse_attention`` recipes see it."""
    recipe = preset("ort-dynamic-attn")
    return prepare_source(recipe, signal_model.onnx_dir, tmp_path_factory.mktemp("fused"))


def test_fused_graph_has_attention_and_embed_layer_norm_per_layer(signal_model, fused):
    layers = json.loads((signal_model.onnx_dir / "config.json").read_text())["n_layers"]
    counts = op_counts(fused)
    assert counts["Attention"] == layers and counts["EmbedLayerNormalization"] == 1
    assert counts["Softmax"] == counts["Where"] == 0  # the eager attention ops are gone
    assert not list(fused.parent.glob("bert_form.onnx"))  # the scratch rewrite is not left behind
    plain = op_counts(signal_model.onnx_dir / "model.onnx")
    assert plain["Attention"] == 0 and plain["Softmax"] == layers


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_fused_graph_computes_the_exports_function(signal_model, fused, padding_side):
    """Same logits on a padded batch, for either padding side (the raw 0/1 mask, not a length index)."""
    export = logits(signal_model.onnx_dir / "model.onnx", signal_model.onnx_dir, padding_side)
    mine = logits(fused, signal_model.onnx_dir, padding_side)
    assert np.abs(export - mine).max() < 1e-4


def test_without_fuse_attention_the_optimizer_leaves_attention_alone(signal_model, tmp_path):
    source = prepare_source(preset("ort-dynamic-pc"), signal_model.onnx_dir, tmp_path)
    counts = op_counts(source)
    assert counts["Attention"] == 0 and counts["SkipLayerNormalization"] > 0


def test_a_rewrite_that_matches_nothing_is_an_error_not_a_silently_unfused_graph(signal_model, tmp_path, monkeypatch):
    import sst2bench.fusion

    monkeypatch.setattr(sst2bench.fusion, "bert_form_attention", lambda model: 0)
    with pytest.raises(UserError, match=r"fused 0 Attention nodes for 2 layers"):
        prepare_source(preset("ort-dynamic-attn"), signal_model.onnx_dir, tmp_path)


def test_dynamic_int8_of_the_fused_graph_quantizes_attention(signal_model, tmp_path):
    from sst2bench.quantization.run import quantize

    attn = quantize(preset("ort-dynamic-attn"), signal_model.onnx_dir, tmp_path / "attn", signal_model.train)
    pc = quantize(preset("ort-dynamic-pc"), signal_model.onnx_dir, tmp_path / "pc", signal_model.train)
    counts = op_counts(tmp_path / "attn" / "model.onnx")
    assert counts["QAttention"] == 2 and counts["QEmbedLayerNormalization"] == 1
    assert attn["ops"]["Attention"] == {"int8": 2, "fp32": 0} and attn["ops"]["EmbedLayerNormalization"] == {"int8": 1, "fp32": 0}
    assert attn["source_graph"] != pc["source_graph"] and "Attention" not in pc["ops"]


@pytest.mark.parametrize(
    "method, fields, message",
    [
        ("ort-dynamic", {"fuse_attention": True, "optimize_graph": False, "operators": ("MatMul", "Attention")}, "needs optimize_graph"),
        ("ort-dynamic", {"fuse_attention": True}, "add 'Attention' to operators"),
        ("ort-static", {"fuse_attention": True}, "static int8 has no quantized Attention"),
        ("inc-static", {"fuse_attention": True, "optimize_graph": True}, "static int8 has no quantized Attention"),
    ],
)
def test_invalid_attention_combinations_are_refused(method, fields, message):
    with pytest.raises(UserError, match=message):
        Recipe.build("x", method, **fields)
