"""Shared fixtures: tiny models the tests build themselves, and the real SST-2 folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "good great fun charming moving bad dull boring awful mess film movie story it 's a the and "
    "is not n't but very of this . , ! journey"
).split()


def write_vocab(folder: Path) -> Path:
    """A WordPiece vocabulary small enough for a tiny model."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(WORDS) + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list("abcdefghijklmnopqrstuvwxyz")
    vocab = list(dict.fromkeys(tokens))
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return path


def build_tiny_distilbert(folder: Path, seed: int = 0, id2label=None) -> Path:
    """A random 2-layer DistilBERT classifier with a WordPiece tokenizer, saved like a Hub model."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizerFast

    vocab = write_vocab(folder)
    tokenizer = DistilBertTokenizerFast(vocab_file=str(vocab), do_lower_case=True, model_input_names=["input_ids", "attention_mask"])
    id2label = id2label or {0: "NEGATIVE", 1: "POSITIVE"}
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size, dim=32, hidden_dim=64, n_layers=2, n_heads=2, max_position_embeddings=128,
        id2label=id2label, label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(seed)
    model = DistilBertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_distilbert(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def sst2_dir() -> Path:
    """The real GLUE SST-2 files: $SST2_DATA_DIR, else ../shared/data/sst2 beside the repo."""
    folder = Path(os.environ.get("SST2_DATA_DIR") or REPO.parent / "shared" / "data" / "sst2")
    if not (folder / "validation.tsv").is_file():
        pytest.fail(f"SST-2 TSV files not found in {folder}; set SST2_DATA_DIR")
    return folder


@pytest.fixture
def offline_hub(monkeypatch):
    """Make the Hub unreachable the way this machine is, without touching the network."""
    from sst2bench import hub

    hub.hub_reachable.cache_clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    hub.hub_reachable.cache_clear()
