"""``sst2bench export``: the model to ship, as one folder its runtime opens as it is.

The folder holds the system's model file(s), tokenizer and config, copied from the run, and a
``manifest.json``: the recipe, a sha256 per file, the accuracy counts on every set the run
evaluated, the latency measured, the CPU and its int8 instructions, and the library versions.
``sst2bench serve --model DIR``, ``onnxruntime.InferenceSession(DIR/model.onnx)`` and optimum's
``ORTModelForSequenceClassification.from_pretrained(DIR)`` open it unchanged.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

from .cache import MANIFEST as CACHE_MANIFEST
from .cache import sha256_of
from .config import RunConfig
from .errors import UserError
from .paths import project_root
from .report import RunResults, int8_instructions, recommendation

MANIFEST = "manifest.json"


class Count(BaseModel):
    correct: int
    n: int


class BundleManifest(BaseModel):
    """What the exported folder is, how it was made and measured, and how to open it."""

    system: str
    run: str
    family: str
    recommended: bool
    recommendation: str
    recipe: dict | None
    files: dict[str, str]  # name → sha256
    accuracy: dict[str, Count]  # evaluated set → counts
    latency: dict[str, float | str]
    cpu: dict
    int8_instructions: str
    versions: dict[str, str | None]
    open_with: dict[str, str]


def _accuracy_counts(res: RunResults, system: str) -> dict[str, Count]:
    counts = {res.reported_split: Count(correct=res.systems[system].correct, n=res.systems[system].n)}
    chosen_on, tuning = res.tuning_scores()
    if system in tuning and not res.chosen_on_reported_split:
        part = res.accuracy.tuning.part  # "select": the part no trial scored, where the recommendation chose
        counts[f"tuning-{part}" if part else "tuning"] = Count(correct=tuning[system].correct, n=tuning[system].n)
    if res.final.done and system in res.final.systems:
        counts["final"] = Count(correct=res.final.systems[system].correct, n=res.final.systems[system].n)
    for name, found in res.accuracy.sets.items():
        if system in found.systems:
            counts[name] = Count(correct=found.systems[system].correct, n=found.systems[system].n)
    return counts


def _latency(res: RunResults, system: str) -> dict[str, float | str]:
    found: dict[str, float | str] = {}
    batch1 = res.latency_at(1, threads=1).get(system)
    if batch1:
        found["p50_ms_batch1_1thread"] = round(batch1.p50_of_rounds_ms, 3)
    if (speedup := res.speedup(system)) is not None:
        found["speedup_vs_fp32_ort_batch1_1thread"] = speedup
    if system in (best := res.best_throughput()):
        found["best_samples_per_second"], found["best_setting"] = round(best[system][0], 1), best[system][1]
    return found


def export_bundle(cfg: RunConfig, system: str | None = None, output: Path | None = None) -> tuple[Path, BundleManifest]:
    """Copy ``system`` (default: the run's recommendation) into ``output`` with its manifest.

    The folder is assembled beside ``output`` and moved into place at the end, so an interrupted
    export leaves nothing half-written."""
    res = RunResults.load(cfg.runs_dir)
    if not res.accuracy.done:
        raise UserError(f"run {cfg.run!r} has no accuracy results ({res.accuracy.reason}): run `make report RUN={cfg.run}` first")
    rec = recommendation(res, cfg.check)
    if system is None:
        if rec.system is None:
            raise UserError(f"run {cfg.run!r} has no recommendation ({rec.sentence}); name the system with --system")
        system = rec.system
    scored = res.systems.get(system)
    if scored is None or scored.latency != "call" or not scored.path:
        local = [name for name, s in res.systems.items() if s.latency == "call" and s.path]
        raise UserError(f"{system!r} is not a local system of run {cfg.run!r}; choose one of: {', '.join(local)}")
    source = Path(scored.path).resolve()
    if not source.is_dir():
        raise UserError(f"{source} is missing: rerun the run's stages (`make report RUN={cfg.run}`) to rebuild it")
    output = Path(output) if output else project_root() / "models" / cfg.run / "export" / system
    if output.exists() and any(output.iterdir()):
        raise UserError(f"{output} exists and is not empty: remove it or choose another --output")
    output.parent.mkdir(parents=True, exist_ok=True)
    provenance = res.provenance
    with tempfile.TemporaryDirectory(prefix=".export-", dir=output.parent) as scratch:
        folder = Path(scratch) / "bundle"
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns(CACHE_MANIFEST, "__pycache__"))
        files = {str(p.relative_to(folder)): sha256_of(p) for p in sorted(folder.rglob("*")) if p.is_file()}
        recipe = res.quantize.recipes[system].recipe if system in res.quantize.recipes else None
        model_file = next((name for name in files if name.endswith(".onnx")), None)
        open_with = {"serve": f"sst2bench serve --model {output}"}
        if model_file:
            open_with["onnxruntime"] = f"onnxruntime.InferenceSession('{output / model_file}')"
            open_with["optimum"] = f"optimum.onnxruntime.ORTModelForSequenceClassification.from_pretrained('{output}')"
        manifest = BundleManifest(
            system=system,
            run=cfg.run,
            family=scored.family,
            recommended=system == rec.system,
            recommendation=rec.sentence,
            recipe=recipe,
            files=files,
            accuracy=_accuracy_counts(res, system),
            latency=_latency(res, system),
            cpu=provenance.get("cpu", {}),
            int8_instructions=int8_instructions(provenance["cpu"]) if provenance.get("cpu") else "not recorded",
            versions={"python": provenance.get("python"), **provenance.get("packages", {})},
            open_with=open_with,
        )
        (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        if output.exists():
            output.rmdir()
        folder.rename(output)
    return output, manifest
