"""Run a system over a labelled split and score it: the work behind ``sst2bench evaluate``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .accuracy import accuracy_report, records_from, save_predictions
from .errors import UserError
from .provenance import provenance
from .systems import Prediction, System

CHUNK = 64


def predict_all(system: System, texts: list[str], progress: bool = True, desc: str | None = None) -> list[Prediction]:
    """``system.predict`` in chunks, so long runs show a progress bar."""
    from tqdm.auto import tqdm

    out: list[Prediction] = []
    with tqdm(total=len(texts), desc=desc or system.name, unit="ex", disable=not progress) as bar:
        for start in range(0, len(texts), CHUNK):
            chunk = texts[start : start + CHUNK]
            out += system.predict(chunk)
            bar.update(len(chunk))
            if getattr(system, "usage", None) is not None:  # a remote endpoint: requests sent / cached
                bar.set_postfix_str(str(system.usage))
    return out


def score_system(system: System, split, predictions_path: Path | str, progress: bool = True) -> dict:
    """Predict every example of a labelled ``datasets`` split, write the JSONL, return the accuracy."""
    if -1 in set(split["label"]):
        raise UserError("this split has no labels (GLUE's test split); evaluate on validation or train")
    texts, gold, idx = list(split["sentence"]), list(split["label"]), list(split["idx"])
    started = time.perf_counter()
    predictions = predict_all(system, texts, progress)
    seconds = time.perf_counter() - started
    records = records_from(idx, gold, predictions)
    save_predictions(records, predictions_path)
    return {
        "system": system.name,
        **accuracy_report(gold, [r.label for r in records]),
        "seconds": round(seconds, 2),
        "predictions": Path(predictions_path).name,
    }


def evaluate(system: System, split, out_dir: Path | str, params: dict | None = None, progress: bool = True) -> dict:
    """``score_system`` into ``out_dir/<name>.jsonl`` plus ``accuracy.json`` with provenance."""
    out_dir = Path(out_dir)
    result = score_system(system, split, out_dir / f"{system.name}.jsonl", progress)
    result["provenance"] = provenance(params)
    (out_dir / "accuracy.json").write_text(json.dumps(result, indent=2))
    return result


def accuracy_table(results: list[dict]):
    """One row per scored system, as a terminal user reads it at a glance."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "system": r["system"],
                "correct/n": f"{r['correct']}/{r['n']}",
                "accuracy %": f"{100 * r['accuracy']:.2f}",
                "95 % CI %": f"{100 * r['accuracy_ci95'][0]:.2f}–{100 * r['accuracy_ci95'][1]:.2f}",
                "macro-F1": round(r["macro_f1"], 4),
            }
            for r in results
        ]
    )
