"""PyTorch int8: the model INC's PyTorch adaptor saved (``best_model.pt``: quantized Linear and
Embedding modules and their tuning config), rebuilt on the architecture of the folder's config.json
and run in eager PyTorch on the x86 quantized engine (``quantized::linear``)."""

from __future__ import annotations

from pathlib import Path

from .base import InferenceConfig, SystemSpec, register_backend
from .torch import TorchSystem

MODEL_FILE = "best_model.pt"


def load_int8_model(model_dir: Path):
    """The int8 module INC saved: INC's ``load`` replays its tuning config on an fp32 model of the
    same architecture (random weights are enough: every weight comes from the saved state dict)."""
    import logging

    from neural_compressor.utils.pytorch import load
    from transformers import AutoConfig, AutoModelForSequenceClassification

    logging.getLogger("neural_compressor").setLevel(logging.WARNING)
    skeleton = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(model_dir)).eval()
    return load(str(model_dir), skeleton).eval()


@register_backend("torch-int8")
class TorchInt8System(TorchSystem):
    """INC's int8 PyTorch model in eager PyTorch."""

    @classmethod
    def from_pretrained(cls, location: str, config: InferenceConfig | None = None, name: str = "int8-torch"):
        from transformers import AutoTokenizer

        return cls(load_int8_model(Path(location)), AutoTokenizer.from_pretrained(location), config, name, source=str(location))

    # Before plain PyTorch, which would claim the folder by its config.json.
    priority = 1

    @staticmethod
    def claims(path: Path) -> bool:
        return (path / MODEL_FILE).is_file()

    @classmethod
    def from_spec(cls, spec: SystemSpec, inference: InferenceConfig) -> TorchInt8System:
        return cls.from_pretrained(spec.path, inference, name=spec.name)
