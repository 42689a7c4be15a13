"""SST-2 from a folder of GLUE TSV files or from the Hugging Face Hub, checked before use.

Sentences keep GLUE's trailing space (``"... journey . "``), exactly as the Hub's
``nyu-mll/glue`` ``sst2`` config does, so that both sources tokenize to the same ids and
predictions line up by ``idx``. The test split has no labels; its ``label`` is -1, as on the Hub.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from .cache import sha256_of, split_digest
from .errors import MissingPrerequisite, UserError
from .paths import project_root

SPLITS = ("train", "validation", "test")
# Where SST-2 comes from: a folder of GLUE TSV files, the Hub, or the folder when there is one.
DATA_SOURCES = ("auto", "tsv", "hub")
# Rows and labels as GLUE ships SST-2 (see shared/data/sst2/SOURCE.md).
EXPECTED_ROWS = {"train": 67_349, "validation": 872, "test": 1_821}
HEADERS = {"train": ["sentence", "label"], "validation": ["sentence", "label"], "test": ["index", "sentence"]}
HUB_DATASET = "nyu-mll/glue"
HUB_CONFIG = "sst2"
# The project's own data folder, below the project root.
DEFAULT_DATA_DIR = Path("data/raw/sst2")
HOW_TO_PROVIDE = (
    "set SST2_DATA_DIR to a folder with GLUE's train.tsv, validation.tsv and test.tsv "
    f"(or copy them to {DEFAULT_DATA_DIR}/), or use source='hub' with network access"
)


@dataclass(frozen=True)
class SplitFile:
    """What was read from one TSV file, for provenance."""

    split: str
    path: str
    rows: int
    sha256: str


def default_data_dir() -> Path:
    """``SST2_DATA_DIR`` when set, else ``data/raw/sst2``."""
    return Path(os.environ.get("SST2_DATA_DIR") or project_root() / DEFAULT_DATA_DIR)


def read_split_tsv(path: Path, split: str, check_rows: bool = True) -> dict[str, list]:
    """Read one GLUE TSV with quoting off; stop with the file and line on anything malformed."""
    if not path.is_file():
        raise UserError(f"{path}: file not found; {HOW_TO_PROVIDE}")
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise UserError(f"{path}: the file is empty; expected a header {' <TAB> '.join(HEADERS[split])}")
    header, body = rows[0], rows[1:]
    if header != HEADERS[split]:
        raise UserError(f"{path}: header is {header!r}, expected {HEADERS[split]!r} (tab-separated)")
    idx, sentences, labels = [], [], []
    for line_no, row in enumerate(body, start=2):
        if len(row) != 2:
            raise UserError(f"{path}:{line_no}: expected 2 tab-separated columns, found {len(row)}")
        if split == "test":
            index, sentence = row
            if not index.isdigit():
                raise UserError(f"{path}:{line_no}: index {index!r} is not a whole number")
            label = -1
        else:
            sentence, label_text = row
            if label_text not in ("0", "1"):
                raise UserError(f"{path}:{line_no}: label {label_text!r} is not 0 or 1")
            index, label = len(idx), int(label_text)
        if not sentence.strip():
            raise UserError(f"{path}:{line_no}: the sentence is empty")
        idx.append(int(index))
        sentences.append(sentence)
        labels.append(label)
    if check_rows and len(idx) != EXPECTED_ROWS[split]:
        raise UserError(f"{path}: {len(idx)} rows, GLUE's SST-2 {split} split has {EXPECTED_ROWS[split]} (truncated or a different file?)")
    if split != "test" and check_rows and set(labels) != {0, 1}:
        raise UserError(f"{path}: labels {sorted(set(labels))}, expected both 0 and 1")
    return {"idx": idx, "sentence": sentences, "label": labels}


def load_sst2_tsv(data_dir: Path | str | None = None, splits=SPLITS, check_rows: bool = True):
    """Load SST-2 splits from GLUE TSV files; returns (DatasetDict, list of SplitFile)."""
    import datasets

    folder = Path(data_dir) if data_dir else default_data_dir()
    if not folder.is_dir():
        raise MissingPrerequisite(f"SST-2 data folder {folder} does not exist; {HOW_TO_PROVIDE}")
    features = datasets.Features(
        {
            "idx": datasets.Value("int32"),
            "sentence": datasets.Value("string"),
            "label": datasets.Value("int64"),
        }
    )
    parts, files = {}, []
    for split in splits:
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        path = folder / f"{split}.tsv"
        columns = read_split_tsv(path, split, check_rows=check_rows)
        parts[split] = datasets.Dataset.from_dict(columns, features=features)
        files.append(SplitFile(split, str(path), len(columns["idx"]), sha256_of(path)))
    return datasets.DatasetDict(parts), files


def load_sst2_hub(splits=SPLITS, revision: str | None = None):
    """Load SST-2 from the Hub (``nyu-mll/glue``, ``sst2``) at ``revision``; fails fast when the Hub is unreachable.

    The revision is resolved to its commit first, so a revision the Hub does not have stops with a
    UserError naming it (datasets 5.0.1 would otherwise fall back, with a log line only, to whatever
    revision it cached last), and the data loaded is checked to be that commit's. Each SplitFile
    names ``hf://datasets/nyu-mll/glue@<commit>`` and a sha256 of the split's rows (idx, sentence, label).
    """
    import datasets
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from .hub import download_error, endpoint, require_hub

    require_hub(f"dataset {HUB_DATASET}/{HUB_CONFIG}")
    if datasets.config.HF_ENDPOINT.rstrip("/") != endpoint():
        raise UserError(
            f"HF_ENDPOINT is {endpoint()} but datasets was imported when it was {datasets.config.HF_ENDPOINT}: "
            "set HF_ENDPOINT before starting Python (or the notebook kernel)"
        )
    wanted = revision or "main"
    try:
        commit = HfApi(endpoint=endpoint()).dataset_info(HUB_DATASET, revision=wanted).sha
        loaded = datasets.load_dataset(HUB_DATASET, HUB_CONFIG, revision=commit)
    except (HfHubHTTPError, datasets.exceptions.DatasetNotFoundError, FileNotFoundError, ConnectionError) as error:
        raise download_error("dataset", f"{HUB_DATASET} ({HUB_CONFIG})", wanted, error, "data.revision") from error
    unknown = [split for split in splits if split not in loaded]
    if unknown:
        raise UserError(f"dataset {HUB_DATASET} ({HUB_CONFIG}) at revision {wanted} has no split {unknown}; it has {sorted(loaded)}")
    files = []
    for split in splits:
        cached = [entry["filename"] for entry in loaded[split].cache_files]
        if cached and not all(f"/{commit}/" in name for name in cached):
            raise UserError(
                f"dataset {HUB_DATASET} ({HUB_CONFIG}): datasets loaded {cached[0]}, not revision {commit}; clear HF_DATASETS_CACHE and retry"
            )
        files.append(
            SplitFile(split, f"hf://datasets/{HUB_DATASET}@{commit}/{HUB_CONFIG}/{split}", len(loaded[split]), split_digest(loaded[split]))
        )
    return datasets.DatasetDict({split: loaded[split] for split in splits}), files


def load_sst2(
    source: str = "auto", data_dir: Path | str | None = None, splits=SPLITS, check_rows: bool = True, revision: str | None = None
):
    """Load SST-2 from ``tsv``, ``hub`` or ``auto``.

    ``auto`` reads the folder named by ``data_dir`` or ``SST2_DATA_DIR`` (an error if it is not
    there), else ``data/raw/sst2`` when it exists, else the Hub at ``revision`` (a commit, or main).
    """
    if source not in DATA_SOURCES:
        raise UserError(f"unknown data source {source!r}; choose auto, tsv or hub")
    named = data_dir or os.environ.get("SST2_DATA_DIR")
    folder = Path(named) if named else project_root() / DEFAULT_DATA_DIR
    if source == "tsv" or (source == "auto" and (named or folder.is_dir())):
        return load_sst2_tsv(folder, splits, check_rows=check_rows)
    if source == "auto":
        from .hub import hub_reachable

        if not hub_reachable():
            raise MissingPrerequisite(f"no SST-2 data: {folder} does not exist and the Hugging Face Hub is unreachable; {HOW_TO_PROVIDE}")
    return load_sst2_hub(splits, revision=revision)


# Where accuracy-aware choices (INC's tuning, a mixed-precision search, picking a system) are made:
# whole SST-2 train sentences kept out of the fine-tune, or the reported split itself (Intel's protocol).
TUNING_SOURCES = ("train-sentences", "validation")


@dataclass(frozen=True)
class TuningConfig:
    """The tuning split: ``size`` whole train sentences, seeded, length-matched to validation in
    ``length_bins`` word-count bins; or ``source: validation`` for models trained on all of train.
    ``select_fraction`` of those sentences (seeded) is held out of every accuracy-aware trial and
    only selects (the recommendation and its rules), so a recipe that tuned until it passed is
    judged on sentences its tuning never saw; the rest is the *tune* part (with ``source:
    validation``, Intel's protocol, there is no select part: tuning and selection both use the
    reported split, and the report says so). ``also_on_reported``
    adds, for each accuracy-aware recipe, a copy tuned on the reported split and a 2-fold
    cross-fitted estimate of it."""

    source: str = "train-sentences"
    size: int = 2000
    seed: int = 0
    length_bins: int = 10
    select_fraction: float = 0.5
    also_on_reported: bool = False

    def __post_init__(self):
        if self.source not in TUNING_SOURCES:
            raise UserError(f"data.tuning.source must be one of {TUNING_SOURCES}, not {self.source!r}")
        if self.size < 1 or self.length_bins < 1:
            raise UserError("data.tuning.size and data.tuning.length_bins must be at least 1")
        if not 0 <= self.select_fraction < 1:
            raise UserError("data.tuning.select_fraction must be in [0, 1): 0 selects on the tune part itself")
        if self.source == "train-sentences" and self.select_fraction and not 1 <= int(self.select_fraction * self.size + 1e-9) < self.size:
            raise UserError(
                f"data.tuning.select_fraction {self.select_fraction:g} of {self.size} sentences leaves the tune or the select part empty"
            )


def token_spans(sentence: str):
    """Every contiguous run of whitespace tokens of ``sentence``, joined by one space (SST's phrases are such runs)."""
    tokens = sentence.split()
    return (" ".join(tokens[start:end]) for start in range(len(tokens)) for end in range(start + 1, len(tokens) + 1))


def whole_sentences(sentences: list[str]) -> list[int]:
    """Indices of the rows no longer row contains as a token span (the first row of each distinct text).

    Rows are visited longest first; a row is whole unless it is a span of a whole row already seen
    (any row containing it is itself contained in a whole row), so only whole rows' spans are listed.
    """
    first_row = {}
    for row, sentence in enumerate(sentences):
        first_row.setdefault(" ".join(sentence.split()), row)
    spans: set[str] = set()
    whole = []
    for text in sorted(first_row, key=lambda t: len(t.split()), reverse=True):
        if text not in spans:
            whole.append(first_row[text])
            spans.update(token_spans(text))
    return sorted(whole)


def rows_contained_in(sentences: list[str], containers: list[str]) -> list[int]:
    """Indices of the rows equal to a token span of any of ``containers`` (each container included)."""
    spans: set[str] = set()
    for container in containers:
        spans.update(token_spans(container))
    return [row for row, sentence in enumerate(sentences) if " ".join(sentence.split()) in spans]


def length_matched_sample(lengths: list[int], reference_lengths: list[int], size: int, seed: int, bins: int) -> list[int]:
    """``size`` indices into ``lengths``, drawn seeded so that their word counts follow ``reference_lengths``:
    the reference's quantile bins each get its share of the sample (largest remainders first), and
    no length outside the reference's range is drawn."""
    import numpy as np

    if size > len(lengths):
        raise UserError(f"the tuning split asks for {size} sentences but only {len(lengths)} are available")
    edges = np.unique(np.quantile(reference_lengths, np.linspace(0, 1, bins + 1)[1:-1]))
    reference_bins = np.searchsorted(edges, reference_lengths, side="right")
    inside = (np.asarray(lengths) >= min(reference_lengths)) & (np.asarray(lengths) <= max(reference_lengths))
    candidate_bins = np.where(inside, np.searchsorted(edges, lengths, side="right"), -1)
    shares = np.bincount(reference_bins, minlength=len(edges) + 1) / len(reference_lengths) * size
    wanted = np.floor(shares).astype(int)
    wanted[np.argsort(-(shares - wanted), kind="stable")[: size - wanted.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = []
    for bin_index, count in enumerate(wanted):
        members = np.flatnonzero(candidate_bins == bin_index)
        if count > len(members):
            low = edges[bin_index - 1] if bin_index else min(reference_lengths)
            high = edges[bin_index] if bin_index < len(edges) else max(reference_lengths)
            raise UserError(
                f"the tuning split needs {count} sentences in length bin {bin_index} ({low:g} to {high:g} words) but the data has {len(members)}; "
                "lower data.tuning.size or data.tuning.length_bins"
            )
        chosen += rng.choice(members, size=count, replace=False).tolist()
    return sorted(chosen)


@dataclass(frozen=True)
class TuningSplit:
    """The tuning split in its two parts and the train rows left for fitting (fine-tune and calibration)."""

    tuning: object  # datasets.Dataset: the tune part, every accuracy-aware trial scores on it
    train: object  # datasets.Dataset: train without every row contained in a tuning sentence
    source: str
    removed_train_rows: int
    select: object = None  # datasets.Dataset: the select part, or None when selection uses the tune part

    @property
    def selection(self):
        """Where the recommendation's rules are applied: the select part when there is one."""
        return self.select if self.select is not None else self.tuning


def make_tuning_split(train, validation, config: TuningConfig) -> TuningSplit:
    """Whole train sentences length-matched to ``validation`` and train without their phrases; or,
    with ``source: validation``, the reported split itself and all of train."""
    if config.source == "validation":
        return TuningSplit(validation, train, "validation", 0)
    sentences = list(train["sentence"])
    whole = whole_sentences(sentences)
    picked = length_matched_sample(
        [len(sentences[row].split()) for row in whole],
        [len(sentence.split()) for sentence in validation["sentence"]],
        config.size,
        config.seed,
        config.length_bins,
    )
    tuning_rows = [whole[i] for i in picked]
    removed = set(rows_contained_in(sentences, [sentences[row] for row in tuning_rows]))
    kept = [row for row in range(len(sentences)) if row not in removed]
    tune_rows, select_rows = tune_and_select(tuning_rows, config.select_fraction, config.seed)
    return TuningSplit(
        train.select(tune_rows),
        train.select(kept),
        "train-sentences",
        len(removed),
        train.select(select_rows) if select_rows else None,
    )


def tune_and_select(rows: list[int], select_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """The tuning split's rows in a seeded *tune* part and a *select* part of ``select_fraction``."""
    import random

    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    held = int(select_fraction * len(rows) + 1e-9)  # 0.57 × 100 is 56.99… in floating point
    return sorted(shuffled[held:]), sorted(shuffled[:held])


def describe_split(split) -> dict:
    """Rows, mean and quartile word counts and checksum of a split, for model cards and results."""
    import numpy as np

    words = [len(sentence.split()) for sentence in split["sentence"]]
    return {
        "rows": len(split),
        "mean_words": round(float(np.mean(words)), 2),
        "word_quartiles": [float(q) for q in np.quantile(words, [0.25, 0.5, 0.75])],
        "positive": int(sum(split["label"])),
        "sha256": split_digest(split),
    }
