"""Any labelled sentiment table (CSV, TSV, JSONL, Parquet or a Hub dataset) in SST-2's shape.

``load_labelled`` returns a ``datasets.Dataset`` with the columns ``idx`` (the row's position in
the source, 0..n-1), ``sentence`` and ``label`` (0 = negative, 1 = positive): the shape of
``load_sst2_tsv(...)[0]["validation"]``, so ``evaluation.score_system`` scores it unchanged.

Everything is checked before anything is returned, and a bad input ends in one ``UserError``
naming the file, the place (``file:LINE`` for CSV, TSV and JSONL, 1-based with the header as
line 1; ``row index I``, 0-based, for Parquet and Hub datasets) and the problem. Loading writes
nothing (a Hub dataset goes to the ``datasets`` cache, as any download does).

How files are read:

- ``.tsv``: tab-separated with quoting OFF (``csv.QUOTE_NONE``), as GLUE ships SST-2, so a
  sentence that starts with ``"`` stays one field (see shared/data/ood-sentences/SOURCE.md).
- ``.csv``: comma-separated with standard CSV quoting (a field with a comma is ``"quoted"``).
- ``.jsonl``: one JSON object per line.
- ``.parquet``: with pandas (pyarrow).

CSV and TSV go through Python's ``csv`` reader (not pandas) because it knows on which line each
record starts and how many fields it has: pandas counts records, not lines, fills a short row
with empty strings and drops an extra field of the first data row with only a warning.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .hub import _one_line

# File types by suffix (lower case); anything else that exists is an unknown file type.
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
# Suffixes that say "a file" even when it is not there (a Hub id has none of these).
FILE_LIKE = (*SUFFIXES, ".txt", ".json", ".ndjson", ".xlsx", ".xls", ".gz", ".bz2", ".xz", ".zip", ".arrow", ".feather", ".pq")
# A Hub dataset's split when none is named: the first of these it has (as HF ``evaluate`` picks).
SPLIT_PREFERENCE = ("test", "validation", "train")
TARGETS = {"NEGATIVE": 0, "POSITIVE": 1, "0": 0, "1": 1}


def is_file_source(source: str) -> bool:
    """Whether ``source`` names a local file (there or not) rather than a Hub dataset id."""
    text = str(source)
    path = Path(text).expanduser()
    if path.suffix.lower() in FILE_LIKE or "".join(path.suffixes[-2:]).lower() in FILE_LIKE:
        return True
    return path.is_absolute() or text.startswith(("./", "../", "~", ".\\", "..\\")) or path.exists()


def parse_label_map(items: list[str] | str | None) -> dict | None:
    """``["1=NEGATIVE", "4=POSITIVE"]`` or one JSON object string to a label map (None: no map)."""
    if not items:
        return None
    if isinstance(items, str):
        items = [items]
    if len(items) == 1 and items[0].lstrip().startswith("{"):
        try:
            mapping = json.loads(items[0])
        except json.JSONDecodeError as error:
            raise UserError(f"label map {items[0]!r} is not a JSON object: {error}") from None
        if not isinstance(mapping, dict):
            raise UserError(f"label map {items[0]!r} is not a JSON object")
        return mapping
    mapping = {}
    for item in items:
        raw, sep, target = item.rpartition("=")
        if not sep or not raw:
            raise UserError(f"label map item {item!r} is not VALUE=NEGATIVE or VALUE=POSITIVE (e.g. 1=NEGATIVE 5=POSITIVE)")
        mapping[raw] = target
    return mapping


def load_labelled(
    source: str,
    text_column: str = "sentence",
    label_column: str = "label",
    label_map: dict | None = None,
    config: str | None = None,
    split: str | None = None,
    revision: str | None = None,
):
    """Load a labelled table as ``idx``, ``sentence``, ``label`` (0/1); see the module docstring.

    ``source`` is a ``.csv``, ``.tsv``, ``.jsonl`` or ``.parquet`` file, or else a Hub dataset id
    (loaded with ``datasets.load_dataset(source, config, split=split, revision=revision)``; without
    ``split``, the first of test, validation, train that the dataset has). ``label_map`` maps the raw
    labels (as they appear in the file, or ints) to NEGATIVE/POSITIVE (or 0/1); without it the
    labels must already be 0 or 1. ``config``, ``split`` and ``revision`` are for Hub ids only.
    """
    mapping = _normalise_map(label_map)
    path = Path(str(source)).expanduser()
    if is_file_source(source):
        for name, value in (("config", config), ("split", split), ("revision", revision)):
            if value:
                raise UserError(f"{source}: {name} {value!r} is for Hub datasets; a file is one table")
        table = _read_file(path)
    else:
        table = _read_hub(str(source), config, split, revision)
    return _to_dataset(table, text_column, label_column, mapping)


# ---------------------------------------------------------------- reading


@dataclass
class _Table:
    """Raw rows of a source, before checking: column → values, and where each row is."""

    name: str
    columns: list[str]
    data: dict[str, list]
    where: Callable[[int], str]  # row i → "file:LINE" or "file: row index i"
    header: str  # where the column names are
    label_names: dict[str, list[str]] | None = None  # a Hub ClassLabel column's names


def _read_file(path: Path) -> _Table:
    if path.is_dir():
        raise UserError(f"{path} is a folder; name one CSV, TSV, JSONL or Parquet file")
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UserError(
            f"{path}: unknown file type {path.suffix or '(no suffix)'!r}; use .csv, .tsv, .jsonl or .parquet (or a Hub dataset id)"
        )
    if kind == "parquet":
        return _read_parquet(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise UserError(f"{path}: the file is empty")
    return _read_jsonl(path, text) if kind == "jsonl" else _read_delimited(path, text, kind)


def _read_delimited(path: Path, text: str, kind: str) -> _Table:
    delimiter, quoting, what = ("\t", csv.QUOTE_NONE, "tab") if kind == "tsv" else (",", csv.QUOTE_MINIMAL, "comma")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    records, starts, previous = [], [], 0
    try:
        for record in reader:
            records.append(record)
            starts.append((previous + 1, reader.line_num))
            previous = reader.line_num
    except csv.Error as error:
        raise UserError(f"{path}:{previous + 1}: does not parse as {kind.upper()} ({error})") from None
    while records and not records[-1]:  # blank lines at the end
        records.pop()
        starts.pop()
    header, body = records[0], records[1:]
    if not header:
        raise UserError(f"{path}:1: the line is blank; expected a header naming the columns")
    if not body:
        raise UserError(f"{path}: no rows after the header {delimiter.join(header)!r}")
    for record, (first, last) in zip(body, starts[1:]):
        if not record:
            raise UserError(f"{path}:{first}: the line is blank")
        if len(record) != len(header):
            spans = f" (a quoted field runs from line {first} to line {last})" if last > first else ""
            raise UserError(f"{path}:{first}: expected {len(header)} {what}-separated fields like the header, found {len(record)}{spans}")
    columns = {name: [record[i] for record in body] for i, name in reversed(list(enumerate(header)))}  # first of duplicates wins
    lines = [first for first, _ in starts[1:]]
    return _Table(str(path), header, columns, lambda i: f"{path}:{lines[i]}", f"{path}:1")


def _read_jsonl(path: Path, text: str) -> _Table:
    objects, lines = [], []
    for line_no, line in enumerate(text.split("\n"), start=1):  # "\n" only: U+0085 is text, not a line break
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{line_no}: not valid JSON ({error.msg} at column {error.colno})") from None
        if not isinstance(value, dict):
            raise UserError(f"{path}:{line_no}: expected a JSON object, found {type(value).__name__}")
        objects.append(value)
        lines.append(line_no)
    columns = list(dict.fromkeys(key for value in objects for key in value))
    missing = object()
    data = {name: [value.get(name, missing) for value in objects] for name in columns}
    for values in data.values():
        for i, value in enumerate(values):
            if value is missing:
                values[i] = None
    return _Table(str(path), columns, data, lambda i: f"{path}:{lines[i]}", f"{path}:{lines[0] if lines else 1}")


def _read_parquet(path: Path) -> _Table:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise UserError(f"{path}: not a readable Parquet file ({_one_line(error)})") from None
    columns = [str(c) for c in frame.columns]
    data = {str(c): frame[c].tolist() for c in frame.columns}
    return _Table(str(path), columns, data, lambda i: f"{path}: row index {i}", str(path))


def _read_hub(source: str, config: str | None, split: str | None, revision: str | None) -> _Table:
    from .hub import endpoint, require_hub

    name = f"dataset {source}" + (f" ({config})" if config else "")
    require_hub(name)
    import datasets
    from huggingface_hub.errors import HfHubHTTPError

    if datasets.config.HF_ENDPOINT.rstrip("/") != endpoint():
        raise UserError(
            f"HF_ENDPOINT is {endpoint()} but datasets was imported when it was {datasets.config.HF_ENDPOINT}: "
            "set HF_ENDPOINT before starting Python"
        )
    at = f"{name} at revision {revision or 'main'}"
    try:
        if split is None:
            names = datasets.get_dataset_split_names(source, config, revision=revision)
            split = next((s for s in SPLIT_PREFERENCE if s in names), None)
            if split is None:
                raise UserError(f"{at} has the splits {names}; name one (split=..., --split)")
        loaded = datasets.load_dataset(source, config, split=split, revision=revision)
    except (HfHubHTTPError, FileNotFoundError, ConnectionError, ValueError, datasets.exceptions.DatasetsError) as error:
        raise UserError(f"{at}, split {split}, could not be loaded from {endpoint()}: {_one_line(error)}") from error
    place = f"{name} split {split}"
    label_names = {c: f.names for c, f in loaded.features.items() if isinstance(f, datasets.ClassLabel)}
    data = {column: list(loaded[column]) for column in loaded.column_names}
    return _Table(place, list(loaded.column_names), data, lambda i: f"{place}: row index {i}", place, label_names)


# ---------------------------------------------------------------- checking


def _normalise_map(label_map: dict | None) -> dict[str, int] | None:
    if label_map is None:
        return None
    if not isinstance(label_map, dict) or not label_map:
        raise UserError(f"label map {label_map!r} is empty or not a mapping; give VALUE → NEGATIVE/POSITIVE pairs")
    mapping: dict[str, int] = {}
    for raw, target in label_map.items():
        key = _key(raw)
        value = TARGETS.get(str(target).strip().upper()) if not isinstance(target, bool) else None
        if value is None:
            raise UserError(f"label map sends {raw!r} to {target!r}; use NEGATIVE or POSITIVE (or 0 or 1)")
        if mapping.get(key, value) != value:
            raise UserError(f"label map sends {raw!r} both to NEGATIVE and to POSITIVE")
        mapping[key] = value
    return mapping


def _key(value) -> str | None:
    """A raw label as the text a label map is keyed by: 4, 4.0 and "4" are all "4"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return str(value).strip()


def _to_dataset(table: _Table, text_column: str, label_column: str, mapping: dict[str, int] | None):
    import datasets

    for role, column in (("text", text_column), ("label", label_column)):
        if column not in table.data:
            found = ", ".join(repr(c) for c in table.columns) or "none"
            raise UserError(f"{table.header}: no {role} column {column!r}; columns found: {found}")
    texts, raw_labels = table.data[text_column], table.data[label_column]
    if not texts:
        raise UserError(f"{table.name}: no rows")
    names = (table.label_names or {}).get(label_column)
    sentences, labels = [], []
    for i, (text, raw) in enumerate(zip(texts, raw_labels)):
        if text is None or (isinstance(text, float) and math.isnan(text)):
            raise UserError(f"{table.where(i)}: no text in {text_column!r}")
        if not isinstance(text, str):
            raise UserError(f"{table.where(i)}: the text in {text_column!r} is {text!r}, not a string")
        if not text.strip():
            raise UserError(f"{table.where(i)}: the text in {text_column!r} is empty")
        sentences.append(text)
        labels.append(_label(raw, mapping, names, label_column, table.where(i)))
    features = datasets.Features({"idx": datasets.Value("int32"), "sentence": datasets.Value("string"), "label": datasets.Value("int64")})
    return datasets.Dataset.from_dict({"idx": list(range(len(sentences))), "sentence": sentences, "label": labels}, features=features)


def _label(raw, mapping: dict[str, int] | None, names: list[str] | None, column: str, where: str) -> int:
    key = _key(raw)
    if key is None or key == "":
        raise UserError(f"{where}: no label in {column!r}")
    named = names[int(key)] if names and key.lstrip("-").isdigit() and 0 <= int(key) < len(names) else None
    shown = f"{raw!r}" + (f" ({named!r})" if named else "")
    if mapping is None:
        if key in ("0", "1"):
            return int(key)
        hint = " (-1 marks an unlabelled split, like GLUE's test; choose another split)" if key == "-1" else ""
        raise UserError(f"{where}: label {shown} is not 0 or 1{hint}; give a label map (VALUE=NEGATIVE|POSITIVE ...) for other labels")
    for candidate in (key, named):
        if candidate is not None and candidate in mapping:
            return mapping[candidate]
    keys = ", ".join(repr(k) for k in mapping)
    raise UserError(f"{where}: label {shown} is not in the label map (its keys: {keys})")
