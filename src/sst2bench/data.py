"""SST-2 from a folder of GLUE TSV files or from the Hugging Face Hub, checked before use.

Sentences keep GLUE's trailing space (``"... journey . "``), exactly as the Hub's
``nyu-mll/glue`` ``sst2`` config does, so that both sources tokenize to the same ids and
predictions line up by ``idx``. The test split has no labels; its ``label`` is -1, as on the Hub.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        digest = hashlib.sha256()
        for row in zip(loaded[split]["idx"], loaded[split]["sentence"], loaded[split]["label"]):
            digest.update(("\t".join(map(str, row)) + "\n").encode("utf-8"))
        files.append(SplitFile(split, f"hf://datasets/{HUB_DATASET}@{commit}/{HUB_CONFIG}/{split}", len(loaded[split]), digest.hexdigest()))
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
