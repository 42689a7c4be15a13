import pytest
import torch

from sst2bench.errors import UserError
from sst2bench.standin import (
    MODEL_INPUT_NAMES,
    FinetuneConfig,
    base_model_dir,
    batch_order,
    convert_bert_to_distilbert,
    finetune,
)

from .conftest import write_vocab


def hidden_state_gap(bert_dir, texts):
    """Largest |BERT - converted DistilBERT| over real (unpadded) token positions, in float64."""
    from transformers import BertModel

    bert = BertModel.from_pretrained(bert_dir, add_pooling_layer=False).double().eval()
    model, tokenizer = convert_bert_to_distilbert(bert_dir)
    model = model.double().eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = bert(**batch).last_hidden_state
        actual = model.distilbert(**batch).last_hidden_state
    mask = batch["attention_mask"].bool()
    return (expected - actual).abs()[mask].max().item(), model, tokenizer


def test_real_minilm_converts_exactly():
    texts = ["it 's a charming and often affecting journey . ", "unflinchingly bleak and desperate "]
    gap, model, tokenizer = hidden_state_gap(base_model_dir(), texts)
    assert gap < 1e-5
    assert tokenizer.model_input_names == MODEL_INPUT_NAMES
    assert model.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    assert (model.config.n_layers, model.config.dim, model.config.n_heads, model.config.hidden_dim) == (6, 384, 12, 1536)


def test_random_bert_with_token_types_converts_exactly(tmp_path):
    from transformers import BertConfig, BertModel

    vocab = write_vocab(tmp_path)
    config = BertConfig(
        vocab_size=len(vocab.read_text().split()), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    torch.manual_seed(1)
    bert = BertModel(config, add_pooling_layer=False)
    with torch.no_grad():  # a large token-type embedding makes a wrong fold visible
        bert.embeddings.token_type_embeddings.weight.normal_(0, 1.0)
    bert.save_pretrained(tmp_path)
    gap, _, _ = hidden_state_gap(tmp_path, ["good film .", "a very dull , boring mess"])
    assert gap < 1e-5


def test_batch_order_covers_every_example_and_is_reproducible():
    lengths = [i % 17 + 1 for i in range(1000)]
    batches = batch_order(lengths, 32, seed=3, epochs=2)
    assert batches == batch_order(lengths, 32, seed=3, epochs=2)
    first_epoch = [i for b in batches[: len(batches) // 2] for i in b]
    assert sorted(first_epoch) == list(range(1000))
    half = batch_order(lengths, 32, seed=3, epochs=0.5)
    assert sum(len(b) for b in half) == 500
    assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 2 for b in batches[:10])


def test_config_rejects_nonsense():
    with pytest.raises(UserError):
        FinetuneConfig(epochs=0)
    with pytest.raises(UserError):
        FinetuneConfig(train_examples=-5)


def tiny_student(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


SENTENCES = ["good film .", "great fun !", "dull mess .", "awful , boring movie"] * 8
LABELS = [1, 1, 0, 0] * 8


def test_finetune_learns_and_an_interrupted_run_resumes_to_the_same_weights(tiny_model_dir, tmp_path, monkeypatch):
    from sst2bench.systems import TorchSystem

    config = FinetuneConfig(batch_size=4, epochs=6, learning_rate=1e-2, checkpoint_every=4, threads=1, warmup_ratio=0.0)
    model, tokenizer = tiny_student(tiny_model_dir)
    info = finetune(model, tokenizer, SENTENCES, LABELS, config, tmp_path / "straight", progress=False)
    assert info["steps"] == 48
    assert [p.label for p in TorchSystem(model, tokenizer).predict(SENTENCES)] == LABELS

    calls = {"n": 0}
    real_clip = torch.nn.utils.clip_grad_norm_

    def crash_at_step_21(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 21:
            raise KeyboardInterrupt
        return real_clip(*args, **kwargs)

    interrupted, tokenizer = tiny_student(tiny_model_dir)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", crash_at_step_21)
    with pytest.raises(KeyboardInterrupt):
        finetune(interrupted, tokenizer, SENTENCES, LABELS, config, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real_clip)
    resumed, tokenizer = tiny_student(tiny_model_dir)
    finetune(resumed, tokenizer, SENTENCES, LABELS, config, tmp_path / "resumed", progress=False)
    for (name, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name
