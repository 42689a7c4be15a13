"""The calibration sample every static method reads: seeded train rows (or only whole sentences,
``CalibrationConfig.composition``), tokenized and fed the way the recipe's ``CalibrationConfig.padding``
says (by default as inference at batch 1 sees them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .base import CalibrationConfig

# The tensors a DistilBERT-architecture graph takes.
INPUT_NAMES = ("input_ids", "attention_mask")


@dataclass(frozen=True)
class CalibrationData:
    """Tokenized calibration sentences and how to batch them.

    ``dataset`` holds ``input_ids``/``attention_mask`` rows (unpadded with dynamic padding, padded
    to ``max_length`` otherwise); ``batches()`` yields int64 numpy feeds. With dynamic padding
    every sentence is its own batch, so no pad token ever reaches a calibrator, and consecutive
    batches differ in length (ORT's histogram calibrators must then see one batch per collect).
    """

    dataset: object
    config: CalibrationConfig

    @property
    def batch_size(self) -> int:
        return 1 if self.config.padding == "dynamic" else self.config.batch_size

    @property
    def equal_lengths(self) -> bool:
        """Whether every batch has the same sequence length (only with max_length padding)."""
        return self.config.padding == "max_length"

    def batches(self) -> Iterator[dict]:
        import numpy as np

        for start in range(0, len(self.dataset), self.batch_size):
            rows = self.dataset[start : start + self.batch_size]
            yield {name: np.asarray(rows[name], dtype=np.int64) for name in INPUT_NAMES}

    def __len__(self) -> int:
        return len(self.dataset)


def calibration_pool(train_split, composition: str):
    """The train rows calibration draws from: every row, or only whole sentences (``CalibrationConfig.composition``)."""
    if composition == "rows":
        return train_split
    from ..data import whole_sentences

    key = (train_split._fingerprint, len(train_split))
    if key not in _WHOLE_ROWS:
        _WHOLE_ROWS[key] = whole_sentences(list(train_split["sentence"]))
    return train_split.select(_WHOLE_ROWS[key])


def calibration_sample(calibration: CalibrationConfig, train_split):
    """The train rows ``calibration`` draws: ``samples`` of its composition's pool, seeded."""
    pool = calibration_pool(train_split, calibration.composition)
    return pool.shuffle(seed=calibration.seed).select(range(min(calibration.samples, len(pool))))


# Whole-sentence rows per train split (by its datasets fingerprint): one index, however many recipes calibrate.
_WHOLE_ROWS: dict[tuple, list[int]] = {}


def calibration_data(calibration: CalibrationConfig, tokenizer, train_split) -> CalibrationData:
    """A seeded sample of ``calibration.samples`` train rows (of whole sentences with composition "sentences"), tokenized as ``calibration`` says."""
    import datasets

    if calibration.max_length is None:
        raise ValueError("calibration max_length is unset: resolve it with quantization.run.truncated_as_inference first")

    sample = calibration_sample(calibration, train_split)
    padding = "max_length" if calibration.padding == "max_length" else False
    encoded = tokenizer(list(sample["sentence"]), truncation=True, max_length=calibration.max_length, padding=padding)
    return CalibrationData(datasets.Dataset.from_dict({name: encoded[name] for name in INPUT_NAMES}), calibration)
