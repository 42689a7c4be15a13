"""The interface every compared system answers, and the registry of backends that build them.

A system is described by a :class:`SystemSpec` (name, backend, location, family, kind of
latency); a registered backend turns the spec into a live system in any process (the latency
workers load systems from specs too). A new runtime is one module in this package that defines a
backend class with ``@register_backend("name")``: it is found without being listed anywhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import UserError

PADDINGS = ("dynamic", "max_length")


@dataclass(frozen=True)
class Prediction:
    """A predicted label id, its probability, and the probability of every label."""

    label: int
    score: float
    probabilities: tuple[float, ...]


@runtime_checkable
class System(Protocol):
    """Anything that classifies SST-2 sentences."""

    name: str
    id2label: dict[int, str]

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...


@dataclass
class InferenceConfig:
    """How a local model turns texts into tensors and how many threads it may use.

    The defaults are the evaluation protocol of every run: one sentence per call, as a served
    model sees them (dynamic int8 computes activation ranges per call, so batching other
    sentences with one can change its prediction). ``sst2bench evaluate`` uses them too.
    """

    batch_size: int = 1
    max_length: int = 128
    padding: str = "dynamic"
    threads: int = 1
    # Batch only sentences of one token length, so no row is padded: a batch-invariant model (fp32,
    # static int8) then predicts what it predicts one sentence per call, in fewer calls.
    same_length_batches: bool = False

    def __post_init__(self):
        if self.padding not in PADDINGS:
            raise UserError(f"padding {self.padding!r} is not one of {', '.join(PADDINGS)}")
        if self.same_length_batches and self.padding != "dynamic":
            raise UserError("same_length_batches needs padding='dynamic' (max_length padding pads every row anyway)")
        if self.batch_size < 1 or self.threads < 1 or self.max_length < 2:
            raise UserError("batch_size and threads must be at least 1, max_length at least 2")


# Sentences per call when only one token length is batched (any size gives the same predictions).
SAME_LENGTH_BATCH = 32


def in_same_length_batches(inference: InferenceConfig) -> InferenceConfig:
    """The one-sentence-per-call protocol as same-length batches: for a model whose rows do not depend
    on each other, the same predictions in fewer calls. Any other setting is returned unchanged."""
    if inference.batch_size == 1 and inference.padding == "dynamic":
        return replace(inference, batch_size=SAME_LENGTH_BATCH, same_length_batches=True)
    return inference


def scoring_protocol(spec: SystemSpec, inference: InferenceConfig) -> InferenceConfig:
    """The settings ``spec`` is scored with under the run's ``inference``: in same-length batches
    when its backend's ``rows_independent`` says its rows are (fp32 and static int8 graphs)."""
    independent = getattr(backend(spec.backend), "rows_independent", None)
    return in_same_length_batches(inference) if independent is not None and independent(spec) else inference


def predictions_from_logits(logits) -> list[Prediction]:
    """Softmax each row; the label is the most probable one (ties go to the lower id)."""
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    labels = probabilities.argmax(axis=1)
    return [Prediction(int(label), float(row[label]), tuple(float(p) for p in row)) for label, row in zip(labels, probabilities)]


def check_sst2_labels(id2label: dict[int, str], source: str) -> dict[int, str]:
    """SST-2 is 0 = negative, 1 = positive: refuse a model whose labels say otherwise."""
    id2label = {int(k): v for k, v in id2label.items()}
    names = {k: v.upper() for k, v in id2label.items()}
    if names.get(0, "").startswith("POS") or names.get(1, "").startswith("NEG") or len(names) != 2:
        raise UserError(f"{source}: id2label {id2label} does not map 0 to negative and 1 to positive")
    return id2label


class TokenizingSystem:
    """Shared batching and tokenization for local models."""

    def __init__(self, name: str, tokenizer, id2label: dict, config: InferenceConfig, source: str):
        self.name = name
        self.tokenizer = tokenizer
        self.config = config
        self.id2label = check_sst2_labels(id2label, source)

    def encode(self, texts: Sequence[str], framework: str):
        if any(not isinstance(t, str) or not t.strip() for t in texts):
            raise UserError("every text must be a non-empty string")
        padding = "longest" if self.config.padding == "dynamic" else "max_length"
        return self.tokenizer(list(texts), truncation=True, max_length=self.config.max_length, padding=padding, return_tensors=framework)

    def int64_feed(self, texts: Sequence[str]) -> dict:
        """The graph inputs (``self.input_names``) of ``texts`` as int64 arrays: what ONNX graphs take."""
        batch = self.encode(texts, "np")
        return {name: batch[name].astype("int64") for name in self.input_names}

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        out: dict[int, Prediction] = {}
        for batch in self.batches(texts):
            out.update(zip(batch, predictions_from_logits(self.logits([texts[i] for i in batch]))))
        return [out[i] for i in range(len(texts))]

    def batches(self, texts: Sequence[str]) -> list[list[int]]:
        """Indices of ``texts`` per call: in order, or grouped by token length (``same_length_batches``)."""
        size, order = self.config.batch_size, list(range(len(texts)))
        if self.config.same_length_batches and size > 1:
            lengths = [len(ids) for ids in self.tokenizer(list(texts), truncation=True, max_length=self.config.max_length)["input_ids"]]
            groups: dict[int, list[int]] = {}
            for i in order:
                groups.setdefault(lengths[i], []).append(i)
            return [group[start : start + size] for group in groups.values() for start in range(0, len(group), size)]
        return [order[start : start + size] for start in range(0, len(texts), size)]


# Where each system's latency comes from: a call in this process, or a round-trip over the network.
LATENCY_KINDS = ("call", "network")
FAMILIES = ("fp32", "int8")


@dataclass(frozen=True)
class SystemSpec:
    """How to build a compared system, so that any process (the latency workers) can build it too."""

    name: str
    backend: str
    path: str
    family: str
    latency: str = "call"
    # Backend settings that are not secrets (a remote endpoint's URL and rate); JSON-able.
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.family not in FAMILIES or self.latency not in LATENCY_KINDS:
            raise UserError(f"system {self.name!r}: family must be one of {FAMILIES} and latency one of {LATENCY_KINDS}")

    def load(self, inference: InferenceConfig) -> System:
        return backend(self.backend).from_spec(self, inference)


BACKENDS: dict[str, type] = {}


def register_backend(name: str):
    """Class decorator: ``@register_backend("onnxruntime")`` makes specs with that backend loadable.

    A backend class has ``from_spec(spec, inference)`` and, if it opens local folders,
    ``claims(path) -> bool`` with a ``priority`` (higher is asked first) for :func:`load_system`.
    """

    def register(cls):
        if name in BACKENDS and BACKENDS[name] is not cls:
            raise ValueError(f"backend {name!r} is registered twice ({BACKENDS[name].__name__}, {cls.__name__})")
        cls.backend = name
        BACKENDS[name] = cls
        return cls

    return register


def discover_backends() -> dict[str, type]:
    """Import every module of this package once, so each registers its backends."""
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")
    return BACKENDS


def backend(name: str) -> type:
    if name not in BACKENDS:
        discover_backends()
    if name not in BACKENDS:
        raise UserError(f"no system backend {name!r}; backends: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]


def load_system(location: str, config: InferenceConfig | None = None, name: str | None = None) -> System:
    """A local model folder, opened by the backend that claims it (ONNX Runtime for a folder with a
    .onnx file, PyTorch for a transformers folder), or a Hub model id (PyTorch)."""
    config = config or InferenceConfig()
    path = Path(location)
    if path.is_dir():
        for cls in sorted(discover_backends().values(), key=lambda c: -getattr(c, "priority", 0)):
            if hasattr(cls, "claims") and cls.claims(path):
                return cls.from_spec(SystemSpec(name or path.name, cls.backend, str(path), "fp32"), config)
        raise UserError(f"{path}: not a model folder (no config.json and no .onnx file)")
    if path.exists():
        raise UserError(f"{path}: a model must be a folder, not a file")
    if location.startswith((".", "/", "~")) or location.count("/") > 1:
        raise UserError(f"{location}: no such model folder")
    from ..hub import require_hub

    require_hub(f"model {location!r} (not a local folder)")
    return backend("torch").from_spec(SystemSpec(name or location.split("/")[-1], "torch", location, "fp32"), config)
