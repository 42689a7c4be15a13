"""One interface for every compared system: ``predict(texts) -> list[Prediction]``.

Accuracy, latency and the report only ever see this interface, so a local PyTorch model, an
ONNX Runtime graph and a remote endpoint are measured by the same code. Backends register
themselves (see ``base.register_backend``); the two built-in local ones are exported here.
"""

from .base import (
    PADDINGS,
    InferenceConfig,
    Prediction,
    System,
    SystemSpec,
    TokenizingSystem,
    backend,
    load_system,
    predictions_from_logits,
    register_backend,
)
from .onnxruntime import OrtSystem
from .torch import TorchSystem

__all__ = [
    "PADDINGS",
    "InferenceConfig",
    "OrtSystem",
    "Prediction",
    "System",
    "SystemSpec",
    "TokenizingSystem",
    "TorchSystem",
    "backend",
    "load_system",
    "predictions_from_logits",
    "register_backend",
]
