"""The long studies behind params ``studies``: read from a run's params as written (a dict), so the
report can name what was skipped without importing the config (and the quantizers it validates)."""

from __future__ import annotations


def studies_skipped(params: dict) -> list[str]:
    """The long studies a run's params ask for that ``studies: false`` skips (empty when on)."""
    if params.get("studies", True):
        return []
    tuning = (params.get("data") or {}).get("tuning") or {}
    asked = [
        (bool((params.get("quantize") or {}).get("calibration_seeds")), "the calibration seeds (quantize.calibration_seeds)"),
        (
            bool(tuning.get("also_on_reported")) or tuning.get("source") == "validation",
            "the @val copies and cross-fit folds (data.tuning.also_on_reported)",
        ),
    ]
    return [name for on, name in asked if on]
