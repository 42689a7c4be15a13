"""Stage 80: the final split, after every choice. Every system of the run on the labelled set that
params ``final_test`` names (SST-2's labelled test sentences here), each paired with fp32.

Nothing before this stage opens that file (tests/test_final_split.py): presets, tuning, selection
and the gate's thresholds were all fixed on other data, so this is the one unbiased count.
"""

from __future__ import annotations

from pathlib import Path

from ..cache import sha256_of
from ..config import RunConfig
from ..provenance import provenance
from ..results import FinalResult, write_result
from .accuracy import score_set
from .common import all_specs, model_result, skipped


def stage_final(cfg: RunConfig, progress: bool = True) -> FinalResult:
    out = cfg.runs_dir / "final.json"
    if cfg.final_test is None:
        return skipped(out, FinalResult, "params name no final_test split", cfg)
    model = model_result(cfg)
    if not model.done:
        return skipped(out, FinalResult, f"no fp32 model: {model.reason}", cfg)
    specs, _ = all_specs(cfg, timed=True)  # the run's systems, not their seed and tuning copies
    found = score_set(cfg, specs, cfg.final_test, progress)
    if found.status != "done":
        return skipped(out, FinalResult, f"final split not scored: {found.reason}", cfg)
    source = Path(found.source)
    return write_result(
        out,
        FinalResult(
            source=found.source,
            sha256=sha256_of(source) if source.is_file() else "",
            n=found.n,
            systems=found.systems,
            provenance=provenance(cfg.to_dict()),
        ),
    )
