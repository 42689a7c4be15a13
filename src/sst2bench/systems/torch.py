"""PyTorch eager: a ``transformers`` sequence classifier, as the fp32 reference."""

from __future__ import annotations

from pathlib import Path

from ..profile import torch_category
from ..results.core import FP32_TORCH
from .base import InferenceConfig, SystemSpec, TokenizingSystem, register_backend


@register_backend("torch")
class TorchSystem(TokenizingSystem):
    """A ``transformers`` sequence classifier in eager PyTorch."""

    fp32_reference = (FP32_TORCH,)  # fp32 on this runtime (int8 PyTorch inherits it), for the same-runtime speed-up

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

    op_category = staticmethod(torch_category)

    def op_times(self, texts) -> tuple[dict[tuple[str, str], float], str]:
        """ms per call by op from torch.profiler's self CPU times (nested ops not counted twice), one text per call after an untimed pass."""
        import torch
        from torch.profiler import ProfilerActivity, profile

        for text in texts:  # untimed: every shape once
            self.logits([text])
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for text in texts:
                self.logits([text])
        times = {(e.key, e.key): e.self_cpu_time_total / 1000 / len(texts) for e in prof.key_averages() if e.self_cpu_time_total > 0}
        return times, f"torch {torch.__version__} profiler (self CPU time)"

    # A transformers folder without an ONNX graph.
    priority = 0

    @staticmethod
    def claims(path: Path) -> bool:
        return (path / "config.json").is_file()

    @classmethod
    def from_spec(cls, spec: SystemSpec, inference: InferenceConfig) -> TorchSystem:
        return cls.from_pretrained(spec.path, inference, name=spec.name)
