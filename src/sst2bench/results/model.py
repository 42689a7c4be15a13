"""Stage 10's result: the fp32 model and its ONNX export."""

from __future__ import annotations

from .core import Schema, StageResult


class OnnxAgreement(Schema):
    n: int
    same_label: int
    max_probability_gap: float


class ModelResult(StageResult):
    fp32_dir: str = ""
    # sha256 of the fp32 weights file: two runs (on two machines) compare one model only when equal.
    fp32_weights_sha256: str = ""
    onnx_dir: str = ""
    # The export after ONNX Runtime's transformer optimizer (the graph optimize_graph recipes start from).
    fused_onnx_dir: str = ""
    size_mib: dict[str, float] = {}
    onnx_agreement: OnnxAgreement | None = None
    standin: dict | None = None
    data_files: list[dict] = []
    # The tuning split and the train rows left for fitting: source, rows removed, and per set its
    # rows, word counts and checksum (data.describe_split).
    tuning_split: dict | None = None
