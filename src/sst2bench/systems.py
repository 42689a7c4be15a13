"""One interface for every compared system: ``predict(texts) -> list[Prediction]``.

Accuracy, latency and the report only ever see this interface, so a local PyTorch model, an
ONNX Runtime graph and a remote endpoint are measured by the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

from .errors import UserError

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

    def __post_init__(self):
        if self.padding not in PADDINGS:
            raise UserError(f"padding {self.padding!r} is not one of {', '.join(PADDINGS)}")
        if self.batch_size < 1 or self.threads < 1 or self.max_length < 2:
            raise UserError("batch_size and threads must be at least 1, max_length at least 2")


def predictions_from_logits(logits) -> list[Prediction]:
    """Softmax each row; the label is the most probable one (ties go to the lower id)."""
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    labels = probabilities.argmax(axis=1)
    return [
        Prediction(int(label), float(row[label]), tuple(float(p) for p in row))
        for label, row in zip(labels, probabilities)
    ]


def _check_sst2_labels(id2label: dict[int, str], source: str) -> dict[int, str]:
    """SST-2 is 0 = negative, 1 = positive: refuse a model whose labels say otherwise."""
    id2label = {int(k): v for k, v in id2label.items()}
    names = {k: v.upper() for k, v in id2label.items()}
    if names.get(0, "").startswith("POS") or names.get(1, "").startswith("NEG") or len(names) != 2:
        raise UserError(f"{source}: id2label {id2label} does not map 0 to negative and 1 to positive")
    return id2label


class _TokenizingSystem:
    """Shared batching and tokenization for local models."""

    def __init__(self, name: str, tokenizer, id2label: dict, config: InferenceConfig, source: str):
        self.name = name
        self.tokenizer = tokenizer
        self.config = config
        self.id2label = _check_sst2_labels(id2label, source)

    def encode(self, texts: Sequence[str], framework: str):
        if any(not isinstance(t, str) or not t.strip() for t in texts):
            raise UserError("every text must be a non-empty string")
        padding = "longest" if self.config.padding == "dynamic" else "max_length"
        return self.tokenizer(
            list(texts), truncation=True, max_length=self.config.max_length, padding=padding, return_tensors=framework
        )

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        out: list[Prediction] = []
        size = self.config.batch_size
        for start in range(0, len(texts), size):
            out += predictions_from_logits(self.logits(texts[start : start + size]))
        return out


class TorchSystem(_TokenizingSystem):
    """A ``transformers`` sequence classifier in eager PyTorch."""

    def __init__(self, model, tokenizer, config: InferenceConfig | None = None, name: str = "fp32-torch", source: str = "model"):
        import torch

        config = config or InferenceConfig()
        torch.set_num_threads(config.threads)
        super().__init__(name, tokenizer, model.config.id2label, config, source)
        self.model = model.eval()

    @classmethod
    def from_pretrained(cls, location: str, config: InferenceConfig | None = None, name: str = "fp32-torch"):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(location)
        tokenizer = AutoTokenizer.from_pretrained(location)
        return cls(model, tokenizer, config, name, source=str(location))

    def logits(self, texts):
        import torch

        batch = self.encode(texts, "pt")
        with torch.inference_mode():
            return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.numpy()


class OrtSystem(_TokenizingSystem):
    """An ONNX graph in ONNX Runtime on the CPU, with its threads pinned."""

    def __init__(self, model_dir: Path | str, config: InferenceConfig | None = None, name: str = "fp32-ort", model_bytes: bytes | None = None):
        """Load the folder's one ``.onnx`` file, or ``model_bytes`` with the folder's tokenizer and labels."""
        import onnxruntime as ort
        from transformers import AutoTokenizer

        model_dir = Path(model_dir)
        config = config or InferenceConfig()
        onnx_files = sorted(model_dir.glob("*.onnx"))
        if model_bytes is None and len(onnx_files) != 1:
            raise UserError(f"{model_dir}: expected exactly one .onnx file, found {[f.name for f in onnx_files]}")
        labels = json.loads((model_dir / "config.json").read_text())["id2label"]
        super().__init__(name, AutoTokenizer.from_pretrained(model_dir), labels, config, str(model_dir))
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        model = model_bytes if model_bytes is not None else str(onnx_files[0])
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def logits(self, texts):
        batch = self.encode(texts, "np")
        feed = {name: batch[name].astype("int64") for name in self.input_names}
        return self.session.run(None, feed)[0]


def load_system(location: str, config: InferenceConfig | None = None, name: str | None = None) -> System:
    """A local folder (ONNX when it holds a .onnx file, else PyTorch) or a Hub model id."""
    path = Path(location)
    if path.is_dir():
        if any(path.glob("*.onnx")):
            return OrtSystem(path, config, name=name or path.name)
        if not (path / "config.json").is_file():
            raise UserError(f"{path}: not a model folder (no config.json and no .onnx file)")
        return TorchSystem.from_pretrained(str(path), config, name=name or path.name)
    if path.exists():
        raise UserError(f"{path}: a model must be a folder, not a file")
    if location.startswith((".", "/", "~")) or location.count("/") > 1:
        raise UserError(f"{location}: no such model folder")
    from .hub import require_hub

    require_hub(f"model {location!r} (not a local folder)")
    return TorchSystem.from_pretrained(location, config, name=name or location.split("/")[-1])
