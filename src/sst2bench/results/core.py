"""What every stage result shares: the schema base, status, versioning and the file helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import UserError

SCHEMA_VERSION = 2
FP32_TORCH = "fp32-torch"
FP32_ORT = "fp32-ort"
# fp32 ONNX Runtime on the graph with every fusion of its transformer optimizer (attention too): where fuse_attention recipes start.
FP32_ORT_FUSED = "fp32-ort-fused"
FP32_OPENVINO = "fp32-openvino"
REFERENCE = "intel-int8-published"
Status = Literal["done", "skipped", "failed", "partial"]
# A stage that stopped part-way is run again next time, never taken from the cache.
UNFINISHED = ("failed", "partial")


class Schema(BaseModel):
    """Unknown keys are errors, as in params: a typo never becomes a silent default."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class StageResult(Schema):
    """What every stage writes: its status (with the reason when not done) and provenance."""

    schema_version: int = SCHEMA_VERSION
    status: Status = "done"
    reason: str = ""
    provenance: dict = {}

    @property
    def done(self) -> bool:
        return self.status == "done"


ResultT = TypeVar("ResultT", bound=StageResult)


def write_result(path: Path | str, result: StageResult) -> StageResult:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.model_dump_json(indent=2))
    return result


def read_result(path: Path | str, schema: type[ResultT], missing_ok: bool = False) -> ResultT:
    """A stage's result, validated; with ``missing_ok`` an absent file reads as not run."""
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return schema(status="skipped", reason=f"{path.name} missing: the stage has not run")
        raise UserError(f"{path} is missing: run the stage that writes it first")
    values = json.loads(path.read_text())
    if values.get("schema_version") != SCHEMA_VERSION:
        raise UserError(
            f"{path} has schema {values.get('schema_version')}, this version reads {SCHEMA_VERSION}: rerun the stage (`make report`)"
        )
    try:
        return schema.model_validate(values)
    except ValidationError as error:
        raise UserError(f"{path} does not match {schema.__name__}: {error}") from error
