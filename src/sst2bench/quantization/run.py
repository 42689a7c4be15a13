"""Apply a recipe end to end: source graph, calibration data, the recipe's method (found in the
registry), record beside the model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..errors import UserError
from ..paths import size_mib
from ..provenance import provenance
from ..systems import InferenceConfig
from .artifacts import match_nodes, op_table, qparams_digest, save_record, summarize_ops
from .base import QuantizeJob, get_method
from .calibration import calibration_data
from .isa import for_target, recipe_isa
from .recipes import Recipe
from .scoring import onnx_scorer

MODEL_FILE = "model.onnx"


def method_module(recipe: Recipe) -> str:
    """The module that defines ``recipe``'s method: with this module, the code that makes its model
    (for cache keys, since the registry imports method modules by name, not by an import statement)."""
    return get_method(recipe.method).__module__


def truncated_as_inference(recipe: Recipe, inference: InferenceConfig) -> Recipe:
    """``recipe`` with its calibration truncation resolved: unset, it is the inference's ``max_length``."""
    if recipe.is_static and recipe.calibration.max_length is None:
        return recipe.replace(calibration_max_length=inference.max_length)
    return recipe


def quantize(
    recipe: Recipe,
    fp32_dir: Path | str,
    out_dir: Path | str,
    train_split,
    tuning_split=None,
    threads: int = 1,
    *,
    torch_dir: Path | str | None = None,
    inference: InferenceConfig | None = None,
) -> dict:
    """Quantize the fp32 model with ``recipe`` into ``out_dir`` and record how.

    ``fp32_dir`` is the fp32 ONNX folder; ``torch_dir`` the fp32 PyTorch folder, which methods
    with ``source_format="torch"`` read. ``tuning_split`` (labelled) is what accuracy-aware
    recipes (INC, the mixed-precision search) score candidates on, with ``inference`` (default:
    the evaluation protocol at ``threads`` threads) as reporting scores.
    """
    from transformers import AutoTokenizer

    from .ort import prepare_source

    method = get_method(recipe.method)()
    fp32_dir, out_dir = Path(fp32_dir), Path(out_dir)
    inference = inference or InferenceConfig(threads=threads)
    recipe = truncated_as_inference(recipe, inference)
    isa = recipe_isa(recipe)
    if recipe.needs_tuning and tuning_split is None:
        raise UserError(f"recipe {recipe.name!r} scores candidates on a labelled tuning split, and none was given")
    if method.source_format == "torch" and (torch_dir is None or not Path(torch_dir).is_dir()):
        raise UserError(
            f"recipe {recipe.name!r}: method {recipe.method} quantizes the fp32 PyTorch model, and its folder {torch_dir} does not exist"
        )
    work_dir = out_dir.parent / f".{out_dir.name}-work"
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    started = time.perf_counter()
    if method.source_format == "onnx":
        source = prepare_source(recipe, fp32_dir, work_dir / "source")
        # fp32_nodes may hold fnmatch patterns; the quantizers get the concrete names they match.
        fp32_nodes = match_nodes(recipe.config.fp32_nodes, source, what=f"recipe {recipe.name!r}: fp32_nodes")
    else:  # a PyTorch method reads fp32_nodes as module names, its own way
        source, fp32_nodes = Path(torch_dir), recipe.config.fp32_nodes
    tokenizer = AutoTokenizer.from_pretrained(fp32_dir)
    tuning = tuning_split if recipe.needs_tuning else None
    job = QuantizeJob(
        recipe=for_target(recipe, isa).replace(fp32_nodes=fp32_nodes),
        source=source,
        out_dir=out_dir,
        work_dir=work_dir,
        calibration=calibration_data(recipe.calibration, tokenizer, train_split) if recipe.is_static else None,
        evaluate=onnx_scorer(fp32_dir, tuning, inference) if tuning is not None else None,
        tuning=tuning,
        inference=inference,
        torch_dir=Path(torch_dir) if torch_dir is not None else None,
    )
    out_dir.mkdir(parents=True)
    tuning_record = method.quantize(job)
    # The fp32 folder's config and tokenizer, as they are: a quantizer's own copy names the
    # temporary folder it read from, which would make two equal models look different.
    outputs = method.output_files()
    for path in fp32_dir.iterdir():
        if path.is_file() and path.suffix != ".onnx" and path.name not in outputs:
            shutil.copy2(path, out_dir / path.name)
    seconds = time.perf_counter() - started
    onnx_output = outputs == (MODEL_FILE,)
    table = method.op_table(job)
    if table is None and onnx_output:
        onnx_source = source if method.source_format == "onnx" else fp32_dir / MODEL_FILE
        table = op_table(onnx_source, out_dir / MODEL_FILE, set(recipe.config.operators))
    table = table or []
    record = save_record(
        out_dir,
        {
            "recipe": recipe.to_dict(),
            "backend": method.backend,
            "isa": isa.to_dict() if isa else None,
            "source_graph": source_description(recipe, method),
            "ops": summarize_ops(table),
            "fp32_fallback": [row for row in table if row["precision"] == "fp32"],
            "op_table": table,
            "fp32_nodes_matched": list(fp32_nodes),
            "qparams_digest": qparams_digest(out_dir / MODEL_FILE) if onnx_output else None,
            "size_mib": round(sum(size_mib(out_dir / name) for name in outputs), 2),
            "fp32_size_mib": size_mib(fp32_dir / MODEL_FILE),
            "quantization_seconds": round(seconds, 1),
            "tuning": tuning_record,
            "provenance": provenance({"recipe": recipe.name}),
        },
    )
    shutil.rmtree(work_dir, ignore_errors=True)
    return record


def source_description(recipe: Recipe, method) -> str:
    if method.source_format == "torch":
        return "the fp32 PyTorch model"
    if not recipe.config.optimize_graph:
        return "as exported"
    if recipe.config.fuse_attention:
        return "fused by ONNX Runtime's transformer optimizer, attention included (Attention, EmbedLayerNormalization)"
    return "fused by ONNX Runtime's transformer optimizer (SkipLayerNormalization, BiasGelu; attention left as exported)"
