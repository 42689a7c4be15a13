"""Typed, versioned results: what each stage writes and what the report and the gate read.

Every stage result is a pydantic model with a ``schema_version``; stages write them and readers
load them only through :func:`write_result` and :func:`read_result`, so a renamed field fails
loudly at load instead of turning into a silent ``KeyError`` (or a ``NaN``) in a report. The
schemas live in one module per stage (``model``, ``quantize``, ``accuracy``, ``latency``,
``endpoint``) on a shared ``core``; this module re-exports them, so readers import from here.
"""

from __future__ import annotations

from .accuracy import AccuracyResult, Comparison, Disagreement, EvalSetResult, FinalResult, SystemAccuracy
from .core import (
    FP32_OPENVINO,
    FP32_ORT,
    FP32_ORT_FUSED,
    FP32_TORCH,
    REFERENCE,
    SCHEMA_VERSION,
    UNFINISHED,
    Schema,
    StageResult,
    Status,
    read_result,
    write_result,
)
from .endpoint import EndpointResult
from .latency import (
    LatencyMeasurement,
    LatencyResult,
    LatencyStats,
    MachineLimit,
    PeakFraction,
    PeakThroughput,
    SpeedRatio,
    faster_baseline,
    ratio_summary,
)
from .model import ModelResult, OnnxAgreement
from .quantize import QuantizeResult, RecipeResult

# Each stage's result file (``runs/<run>/<stage>.json``) and schema, in pipeline order.
STAGE_RESULTS: dict[str, type[StageResult]] = {
    "model": ModelResult,
    "quantize": QuantizeResult,
    "accuracy": AccuracyResult,
    "latency": LatencyResult,
    "cloudflare": EndpointResult,
    "final": FinalResult,
}

__all__ = [
    "AccuracyResult",
    "Comparison",
    "Disagreement",
    "EndpointResult",
    "EvalSetResult",
    "FinalResult",
    "FP32_OPENVINO",
    "FP32_ORT",
    "FP32_ORT_FUSED",
    "FP32_TORCH",
    "LatencyMeasurement",
    "LatencyResult",
    "LatencyStats",
    "MachineLimit",
    "PeakFraction",
    "PeakThroughput",
    "SpeedRatio",
    "faster_baseline",
    "ratio_summary",
    "ModelResult",
    "OnnxAgreement",
    "QuantizeResult",
    "REFERENCE",
    "RecipeResult",
    "SCHEMA_VERSION",
    "STAGE_RESULTS",
    "Schema",
    "StageResult",
    "Status",
    "SystemAccuracy",
    "UNFINISHED",
    "read_result",
    "write_result",
]
