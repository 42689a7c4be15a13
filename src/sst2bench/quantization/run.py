"""Apply a recipe end to end: source graph, calibration data, the recipe's method (found in the
registry), record beside the model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..paths import size_mib
from ..provenance import provenance
from ..systems import InferenceConfig, OrtSystem
from .artifacts import match_nodes, op_table, qparams_digest, save_record, summarize_ops
from .base import CalibrationConfig, QuantizeJob, get_method
from .recipes import Recipe

MODEL_FILE = "model.onnx"


def calibration_dataset(calibration: CalibrationConfig, tokenizer, train_split):
    """A seeded sample of train sentences, padded to the calibration's length (Intel: 104 at 128)."""
    import datasets

    sample = train_split.shuffle(seed=calibration.seed).select(range(min(calibration.samples, len(train_split))))
    encoded = tokenizer(list(sample["sentence"]), truncation=True, max_length=calibration.max_length, padding="max_length")
    return datasets.Dataset.from_dict({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})


def onnx_accuracy(model_dir: Path, split, threads: int = 1):
    """``evaluate(model_bytes) -> accuracy`` on a labelled split, for accuracy-aware tuning."""
    texts, gold = list(split["sentence"]), list(split["label"])

    def evaluate(model_bytes: bytes) -> float:
        system = OrtSystem(model_dir, InferenceConfig(batch_size=64, threads=threads), model_bytes=model_bytes)
        predicted = system.predict(texts)
        return sum(p.label == g for p, g in zip(predicted, gold)) / len(gold)

    return evaluate


def method_module(recipe: Recipe) -> str:
    """The module that defines ``recipe``'s method: with this module, the code that makes its model
    (for cache keys, since the registry imports method modules by name, not by an import statement)."""
    return get_method(recipe.method).__module__


def quantize(recipe: Recipe, fp32_dir: Path | str, out_dir: Path | str, train_split, tuning_split=None, threads: int = 1) -> dict:
    """Quantize the fp32 ONNX folder with ``recipe`` into ``out_dir`` and record how.

    ``tuning_split`` (labelled) is what accuracy-aware methods (INC) score trials on.
    """
    from transformers import AutoTokenizer

    from .ort import prepare_source

    method = get_method(recipe.method)()
    fp32_dir, out_dir = Path(fp32_dir), Path(out_dir)
    work_dir = out_dir.parent / f".{out_dir.name}-work"
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    started = time.perf_counter()
    source = prepare_source(recipe, fp32_dir, work_dir / "source")
    # fp32_nodes may hold fnmatch patterns; the quantizers get the concrete names they match.
    fp32_nodes = match_nodes(recipe.config.fp32_nodes, source, what=f"recipe {recipe.name!r}: fp32_nodes")
    tokenizer = AutoTokenizer.from_pretrained(fp32_dir)
    job = QuantizeJob(
        recipe=recipe.replace(fp32_nodes=fp32_nodes),
        source=source,
        out_dir=out_dir,
        work_dir=work_dir,
        calibration=calibration_dataset(recipe.calibration, tokenizer, train_split) if recipe.is_static else None,
        evaluate=onnx_accuracy(fp32_dir, tuning_split, threads) if method.needs_tuning and tuning_split is not None else None,
    )
    out_dir.mkdir(parents=True)
    tuning = method.quantize(job)
    # The fp32 folder's config and tokenizer, as they are: a quantizer's own copy names the
    # temporary folder it read from, which would make two equal models look different.
    for path in fp32_dir.iterdir():
        if path.is_file() and path.suffix != ".onnx":
            shutil.copy2(path, out_dir / path.name)
    seconds = time.perf_counter() - started
    table = op_table(source, out_dir / MODEL_FILE, set(recipe.config.operators))
    record = save_record(
        out_dir,
        {
            "recipe": recipe.to_dict(),
            "source_graph": "fused by ONNX Runtime's transformer optimizer" if recipe.config.optimize_graph else "as exported",
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
