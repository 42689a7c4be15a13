"""Shared fixtures: tiny models the tests build themselves, and the real SST-2 folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sst2bench.paths import anchor_user_paths

REPO = Path(__file__).resolve().parents[1]
# As the CLI does: a relative SST2_DATA_DIR means "from where pytest was started", whatever a test chdirs to later.
anchor_user_paths()
WORDS = (
    "good great fun charming moving bad dull boring awful mess film movie story it 's a the and is not n't but very of this . , ! journey"
).split()


def write_vocab(folder: Path) -> Path:
    """A WordPiece vocabulary small enough for a tiny model."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = (
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + sorted(WORDS)
        + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
        + list("abcdefghijklmnopqrstuvwxyz")
    )
    vocab = list(dict.fromkeys(tokens))
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return path


def tiny_config_and_tokenizer(folder: Path, dim: int, n_heads: int, id2label=None):
    """A 2-layer DistilBERT config over the tiny WordPiece vocabulary (written to ``folder``)."""
    from transformers import DistilBertConfig, DistilBertTokenizerFast

    vocab = write_vocab(folder)
    tokenizer = DistilBertTokenizerFast(vocab_file=str(vocab), do_lower_case=True, model_input_names=["input_ids", "attention_mask"])
    id2label = id2label or {0: "NEGATIVE", 1: "POSITIVE"}
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size,
        dim=dim,
        hidden_dim=2 * dim,
        n_layers=2,
        n_heads=n_heads,
        max_position_embeddings=128,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    return config, tokenizer


def build_tiny_distilbert(folder: Path, seed: int = 0, id2label=None) -> Path:
    """A random 2-layer DistilBERT classifier with a WordPiece tokenizer, saved like a Hub model."""
    import torch
    from transformers import DistilBertForSequenceClassification

    config, tokenizer = tiny_config_and_tokenizer(folder, dim=32, n_heads=2, id2label=id2label)
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
    folder = Path(os.environ.get("SST2_DATA_DIR") or REPO.parent / "shared" / "data" / "sst2").resolve()
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


# ---------------------------------------------------------------- a tiny model with real signal
#
# A random tiny model's probabilities all sit at 0.50 ± 0.002, so "int8 agrees with fp32" holds
# for any int8 model, broken or not. This one learns a synthetic sentiment task over the tiny
# vocabulary (polar adjectives, negation, "X but Y") in a few seconds, and is scored on
# sentences it never saw.

POSITIVE = ("good", "great", "fun", "charming", "moving")
NEGATIVE = ("bad", "dull", "boring", "awful", "mess")
SIGNAL_HELD_OUT = 500


def synthetic_sentiment(seed: int = 0) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Every sentence of a small sentiment grammar, shuffled and split into (train, held_out).

    "the film is very good ." (1), "this story is n't charming !" (0, negation flips),
    "a movie is dull but moving" (1: the clause after "but" decides). 3,960 distinct sentences;
    the last ``SIGNAL_HELD_OUT`` after a seeded shuffle are never trained on.
    """
    import itertools
    import random

    def polarity(word):
        return int(word in POSITIVE)

    adjectives = POSITIVE + NEGATIVE
    rows = []
    for det, noun, very, adj, punct in itertools.product(
        ("the", "this", "a"), ("film", "movie", "story", "journey"), ("", "very "), adjectives, (".", "!", "")
    ):
        rows.append((f"{det} {noun} is {very}{adj} {punct}".strip(), polarity(adj)))
        for negation in ("not", "n't"):
            rows.append((f"{det} {noun} is {negation} {very}{adj} {punct}".strip(), 1 - polarity(adj)))
    for det, noun, first, second, punct in itertools.product(
        ("the", "this", "a"), ("film", "movie", "story", "journey"), adjectives, adjectives, (".", "!", "")
    ):
        if polarity(first) != polarity(second):
            rows.append((f"{det} {noun} is {first} but {second} {punct}".strip(), polarity(second)))
    random.Random(seed).shuffle(rows)
    return rows[:-SIGNAL_HELD_OUT], rows[-SIGNAL_HELD_OUT:]


class SignalModel:
    """The trained tiny classifier: PyTorch folder, fp32 ONNX export, its data, its held-out accuracy."""

    def __init__(self, torch_dir: Path, onnx_dir: Path, train, held_out, fp32_accuracy: float, train_seconds: float):
        self.torch_dir, self.onnx_dir = torch_dir, onnx_dir
        self.train, self.held_out = train, held_out  # datasets.Dataset with sentence, label
        self.fp32_accuracy, self.train_seconds = fp32_accuracy, train_seconds


def accuracy(system, split) -> float:
    """Accuracy of a loaded system on a labelled split."""
    predicted = system.predict(list(split["sentence"]))
    return sum(p.label == g for p, g in zip(predicted, split["label"])) / len(split)


def onnx_accuracy_on(model_dir: Path, split) -> float:
    """Accuracy of an ONNX model folder on a labelled split (one thread: reproducible)."""
    from sst2bench.systems import InferenceConfig, OrtSystem

    return accuracy(OrtSystem(model_dir, InferenceConfig(batch_size=128, threads=1)), split)


def build_signal_model(folder: Path, seed: int = 0, steps: int = 300) -> SignalModel:
    """Train a 2-layer DistilBERT (dim 64) on the synthetic task for ``steps`` batches of 64, export it."""
    import time

    import datasets
    import torch
    from transformers import DistilBertForSequenceClassification

    from sst2bench.export import export_onnx

    torch_dir, onnx_dir = folder / "torch", folder / "onnx"
    train_rows, held_rows = synthetic_sentiment(seed)
    config, tokenizer = tiny_config_and_tokenizer(torch_dir, dim=64, n_heads=4)
    threads = torch.get_num_threads()
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # two threads on a busy 2-core machine ran several times slower
    model = DistilBertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    encoded = tokenizer([s for s, _ in train_rows], padding=True, return_tensors="pt")
    labels = torch.tensor([y for _, y in train_rows])
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    model.train()
    for _ in range(steps):
        batch = torch.randint(0, len(train_rows), (64,), generator=generator)
        loss = model(input_ids=encoded["input_ids"][batch], attention_mask=encoded["attention_mask"][batch], labels=labels[batch]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train_seconds = time.perf_counter() - started
    torch.set_num_threads(threads)
    model.eval().save_pretrained(torch_dir)
    tokenizer.save_pretrained(torch_dir)
    export_onnx(torch_dir, onnx_dir)

    def as_dataset(rows):
        return datasets.Dataset.from_dict({"sentence": [s for s, _ in rows], "label": [y for _, y in rows]})

    train, held_out = as_dataset(train_rows), as_dataset(held_rows)
    return SignalModel(torch_dir, onnx_dir, train, held_out, onnx_accuracy_on(onnx_dir, held_out), train_seconds)


@pytest.fixture(scope="session")
def signal_model(tmp_path_factory) -> SignalModel:
    """Built once per session (about 10 s): see ``build_signal_model``."""
    return build_signal_model(tmp_path_factory.mktemp("signal"))


# Weight files the quantize stage leaves in the fp32 folder; it copies every other file beside the int8 model.
WEIGHT_SUFFIXES = (".onnx", ".safetensors", ".bin")


def quantize_job(job) -> tuple:
    """Run the job's registered method as the quantize stage does, with the fp32 folder's tokenizer
    and config copied beside the model so it loads. Returns (tuning record, op table)."""
    from sst2bench.quantization.base import get_method

    method = get_method(job.recipe.method)()
    tuning = method.quantize(job)
    fp32_dir = job.source if job.source.is_dir() else job.source.parent
    for path in fp32_dir.iterdir():
        if path.suffix not in WEIGHT_SUFFIXES:
            shutil.copy2(path, job.out_dir / path.name)
    return tuning, method.op_table(job)


def measurement(system, p50=None, family="int8", threads=1, batch_size=1, count=40, round_p50_ms=None, backend=""):
    """A fabricated latency measurement: ``count`` calls at ``p50`` ms in three rounds around it,
    or with ``round_p50_ms`` one call per round, at that round's p50."""
    from sst2bench.results import LatencyMeasurement, LatencyStats

    if round_p50_ms is None:
        round_p50_ms, durations_ms = [p50, p50 * 1.1, p50 * 0.9], [p50] * count
    else:
        durations_ms = list(round_p50_ms)
    return LatencyMeasurement(
        **LatencyStats.from_ns([int(ms * 1e6) for ms in durations_ms], batch_size).model_dump(),
        system=system,
        family=family,
        backend=backend,
        threads=threads,
        batch_size=batch_size,
        padding="dynamic",
        supported_percentiles=[50],
        rounds=list(range(len(round_p50_ms))),
        round_p50_ms=list(round_p50_ms),
        durations_ms=durations_ms,
        load_seconds=0.1,
        rss_shared_libraries_mib=0.0,
        rss_before_load_mib=100.0,
        rss_added_after_load_mib=50.0,
        rss_added_after_calls_mib=60.0,
        thread_settings={},
    )


@pytest.fixture
def final_file(sst2_dir, tmp_path):
    """A copy of the labelled SST-2 test split (../shared/data/sst2-test) in this test's folder."""
    source = sst2_dir.parent / "sst2-test" / "test.tsv"
    if not source.is_file():
        pytest.fail(f"the labelled SST-2 test split is not at {source} (see ../shared/data/sst2-test/SOURCE.md)")
    copy = tmp_path / "final" / "test.tsv"
    copy.parent.mkdir()
    shutil.copyfile(source, copy)
    return copy


@pytest.fixture
def sst2_project(tmp_path, monkeypatch, sst2_dir):
    """An empty project (a params/ folder) as the working directory, reading the real SST-2 files."""
    (tmp_path / "params").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SST2_DATA_DIR", str(sst2_dir))
    return tmp_path
