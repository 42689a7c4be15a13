"""Apply a recipe end to end: source graph, calibration data, quantizer, record beside the model."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

from ..provenance import provenance
from ..systems import InferenceConfig, OrtSystem
from .artifacts import match_nodes, op_table, qparams_digest, save_record, size_mib, summarize_ops
from .recipes import Recipe

MODEL_FILE = "model.onnx"


def calibration_dataset(recipe: Recipe, tokenizer, train_split):
    """A seeded sample of train sentences, padded to the recipe's length (Intel: 104 at 128)."""
    import datasets

    sample = train_split.shuffle(seed=recipe.calibration_seed).select(range(min(recipe.calibration_samples, len(train_split))))
    encoded = tokenizer(list(sample["sentence"]), truncation=True, max_length=recipe.calibration_max_length, padding="max_length")
    return datasets.Dataset.from_dict({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})


def onnx_accuracy(model_dir: Path, split, threads: int = 1):
    """``evaluate(model_bytes) -> accuracy`` on a labelled split, for accuracy-aware tuning."""
    texts, gold = list(split["sentence"]), list(split["label"])

    def evaluate(model_bytes: bytes) -> float:
        system = OrtSystem(model_dir, InferenceConfig(batch_size=64, threads=threads), model_bytes=model_bytes)
        predicted = system.predict(texts)
        return sum(p.label == g for p, g in zip(predicted, gold)) / len(gold)

    return evaluate


def quantize(recipe: Recipe, fp32_dir: Path | str, out_dir: Path | str, train_split, tuning_split=None, threads: int = 1) -> dict:
    """Quantize the fp32 ONNX folder with ``recipe`` into ``out_dir`` and record how.

    ``tuning_split`` (labelled) is what INC's accuracy-aware tuning scores trials on.
    """
    from transformers import AutoTokenizer

    from .inc import quantize_inc
    from .ort import prepare_source, quantize_ort

    fp32_dir, out_dir = Path(fp32_dir), Path(out_dir)
    work_dir = out_dir.parent / f".{out_dir.name}-work"
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    started = time.perf_counter()
    source = prepare_source(recipe, fp32_dir, work_dir / "source")
    # fp32_nodes may hold fnmatch patterns; the quantizers get the concrete names they match.
    fp32_nodes = match_nodes(recipe.fp32_nodes, source, what=f"recipe {recipe.name!r}: fp32_nodes")
    applied = replace(recipe, fp32_nodes=fp32_nodes)
    tokenizer = AutoTokenizer.from_pretrained(fp32_dir)
    calibration = calibration_dataset(recipe, tokenizer, train_split) if recipe.is_static else None
    tuning = None
    if recipe.method == "inc-static":
        if tuning_split is None:
            raise ValueError("INC's accuracy-aware tuning needs a labelled tuning split")
        tuning = quantize_inc(applied, source, out_dir, work_dir, calibration, onnx_accuracy(fp32_dir, tuning_split, threads))
        for path in source.parent.iterdir():
            if path.is_file() and path.suffix != ".onnx":
                shutil.copy2(path, out_dir / path.name)
    else:
        quantize_ort(applied, source, out_dir, work_dir, calibration)
        (produced,) = [p for p in out_dir.glob("*.onnx")]
        produced.rename(out_dir / MODEL_FILE)
    seconds = time.perf_counter() - started
    table = op_table(source, out_dir / MODEL_FILE, set(recipe.operators))
    record = save_record(
        out_dir,
        {
            "recipe": recipe.to_dict(),
            "source_graph": "fused by ONNX Runtime's transformer optimizer" if recipe.optimize_graph else "as exported",
            "ops": summarize_ops(table),
            "fp32_fallback": [row for row in table if row["precision"] == "fp32"],
            "op_table": table,
            "fp32_nodes_matched": list(fp32_nodes),
            "qparams_digest": qparams_digest(out_dir / MODEL_FILE),
            "size_mib": size_mib(out_dir / MODEL_FILE),
            "fp32_size_mib": size_mib(fp32_dir / MODEL_FILE),
            "quantization_seconds": round(seconds, 1),
            "tuning": tuning,
            "provenance": provenance({"recipe": recipe.name}),
        },
    )
    shutil.rmtree(work_dir, ignore_errors=True)
    return record
