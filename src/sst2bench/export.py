"""fp32 ONNX export of a sequence classifier (optimum), checked against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError

ONNX_OPSET = 18
EXPORTED_FILE = "model.onnx"


def export_onnx(model_dir: Path | str, out_dir: Path | str) -> Path:
    """Export ``model_dir`` to ``out_dir/model.onnx`` with tokenizer and config beside it."""
    from optimum.exporters.onnx import main_export

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").is_file():
        raise UserError(f"{model_dir}: not a model folder (no config.json)")
    main_export(str(model_dir), output=out_dir, task="text-classification", opset=ONNX_OPSET, do_validation=False)
    config = json.loads((out_dir / "config.json").read_text())
    if not (out_dir / EXPORTED_FILE).is_file() or "id2label" not in config:
        raise RuntimeError(f"optimum's export did not write {EXPORTED_FILE} with a labelled config in {out_dir}")
    return out_dir / EXPORTED_FILE
