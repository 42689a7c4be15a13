"""Tables and figures of a run's report, built from its JSON only (never from models or data).

The page answers first: the recommendation, the CPU and its int8 instructions (and which int8 models
were quantized on a CPU of another int8 class), the headline table.
Every table is plain HTML without an index column, sortable in the browser by a small inline
script (no CDN: the page works offline), and a value that is not there is shown as "—" with a
footnote that says why, never as NaN.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .errors import UserError
from .look import MISSING, html_table, page_assets, show  # noqa: F401  (show: the report notebook)
from .recommend import Recommendation, candidate_scores, recommend
from .results import (
    FP32_ORT,
    FP32_TORCH,
    STAGE_RESULTS,
    AccuracyResult,
    EndpointResult,
    FinalResult,
    LatencyMeasurement,
    LatencyResult,
    LatencyStats,
    ModelResult,
    QuantizeResult,
    RecipeResult,
    StageResult,
    SystemAccuracy,
    read_result,
)

# The attribute RunResults keeps each stage's result under.
STAGE_ATTRIBUTES = {
    "model": "model",
    "quantize": "quantize",
    "accuracy": "accuracy",
    "latency": "latency",
    "cloudflare": "endpoint",
    "final": "final",
}
# Written by the pipeline beside the stage results: each stage's wall time.
TIMINGS_FILE = "timings.json"


def family_color(family: str) -> str:
    """fp32 blue, int8 orange, in every figure."""
    return "tab:blue" if family == "fp32" else "tab:orange"


# The fp32 weights file of a transformers model folder, in the order looked for.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# The field of the model stage's result that records that file's sha256 (when the stage records it).
RECORDED_WEIGHTS_SHA = "fp32_weights_sha256"


@dataclass(frozen=True)
class Fp32Weights:
    """Which fp32 model a run measured: the sha256 of its weights file, and where that came from;
    ``sha256`` is None when it cannot be known, and ``source`` says why."""

    sha256: str | None
    source: str


def fp32_weights(res: RunResults) -> Fp32Weights:
    """The run's fp32 weights sha256: as the model stage recorded it, else hashed from the fp32 folder
    its model.json names, but only where that folder is the run's own (inside the project that holds
    ``runs/<run>``, not changed since model.json was written): a path read from results copied from
    another machine can name a different model on this disk."""
    from .cache import sha256_of

    model = res.model
    if getattr(model, RECORDED_WEIGHTS_SHA, None):
        return Fp32Weights(getattr(model, RECORDED_WEIGHTS_SHA), "recorded by the model stage")
    if not model.done or not model.fp32_dir:
        return Fp32Weights(
            None, f"no fp32 model in its results: model stage {model.status}" + (f", {model.reason}" if model.reason else "")
        )
    runs_root = res.runs_dir.resolve().parent
    if runs_root.name != "runs":
        return Fp32Weights(None, f"{res.runs_dir} is not a runs/<run> folder of a project, so its fp32 folder cannot be located")
    project = runs_root.parent
    folder = Path(model.fp32_dir) if Path(model.fp32_dir).is_absolute() else project / model.fp32_dir
    if not folder.resolve().is_relative_to(project):
        return Fp32Weights(None, f"its fp32 folder {model.fp32_dir} is outside the run's project {project}")
    weights = next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)
    if weights is None:
        return Fp32Weights(None, f"not recorded in model.json, and {folder} holds no {' or '.join(WEIGHT_FILES)}")
    if weights.stat().st_mtime > (res.runs_dir / "model.json").stat().st_mtime:
        return Fp32Weights(None, f"{weights} changed after the model stage wrote model.json")
    return Fp32Weights(sha256_of(weights), f"hashed from {weights}: model.json records no sha256")


@dataclass
class RunResults:
    """A run's stage results, read through their schemas; the report's only input."""

    run: str
    model: ModelResult
    quantize: QuantizeResult
    accuracy: AccuracyResult
    latency: LatencyResult
    endpoint: EndpointResult
    final: FinalResult
    runs_dir: Path = field(default=Path("."))

    @classmethod
    def load(cls, runs_dir: Path | str) -> RunResults:
        runs_dir = Path(runs_dir)
        stages = (read_result(runs_dir / f"{name}.json", schema, missing_ok=True) for name, schema in STAGE_RESULTS.items())
        return cls(runs_dir.name, *stages, runs_dir=runs_dir)

    @cached_property
    def fp32_weights(self) -> Fp32Weights:
        return fp32_weights(self)

    def stage(self, name: str) -> StageResult:
        return getattr(self, STAGE_ATTRIBUTES[name])

    @property
    def systems(self) -> dict[str, SystemAccuracy]:
        """Every scored system, local or remote, alike."""
        systems = dict(self.accuracy.systems) if self.accuracy.done else {}
        if self.endpoint.done and self.endpoint.system is not None and systems:
            systems[self.endpoint.system.system] = self.endpoint.system
        return systems

    @property
    def provenance(self) -> dict:
        """The provenance of the latency sweep (its CPU is the one the timings belong to), else of accuracy."""
        return next((self.stage(s).provenance for s in ("latency", "accuracy", "model") if self.stage(s).provenance), {})

    @property
    def reported_split(self) -> str:
        return self.accuracy.split or "the evaluation split"

    def tuning_scores(self) -> tuple[str, dict[str, SystemAccuracy]]:
        """The split choices are made on, and every system's scores there.

        Reads ``AccuracyResult.tuning`` (the scores on the tuning split's select part, or on the whole
        tuning split in a run that keeps none, each system paired with fp32) when the accuracy stage wrote it; a run without one is chosen
        on the reported split, and the label says so."""
        tuning = self.accuracy.tuning
        if tuning is not None and tuning.systems and tuning.source != "validation":
            if tuning.part == "select":
                return f"the tuning split's select part ({tuning.n} sentences no trial scored)", dict(tuning.systems)
            return f"the tuning split ({tuning.n} sentences, the ones INC and the search tuned on)", dict(tuning.systems)
        if tuning is not None and tuning.systems:
            return f"{self.reported_split}, the reported split (params data.tuning.source: validation, Intel's protocol)", dict(
                tuning.systems
            )
        return f"{self.reported_split} (this run has no tuning split: chosen on the reported split)", dict(self.accuracy.systems)

    @property
    def chosen_on_reported_split(self) -> bool:
        tuning = self.accuracy.tuning
        return tuning is None or not tuning.systems or tuning.source == "validation"

    def tuned_on_reported_split(self, system: str) -> tuple[bool, str | None]:
        """Whether a system's accuracy-aware choices were made on the reported split (Intel's protocol),
        and its held-out count by 2-fold cross-fitting there when the accuracy stage measured it."""
        recipe = self.quantize.recipes.get(system)
        if recipe is None or recipe.tuned_on != "validation":
            return False, None
        estimate = next((e for e in self.accuracy.crossfit.values() if e.tuned_on_reported == system), None)
        return True, f"{estimate.correct}/{estimate.total}" if estimate else None

    def seed_spread(self, system: str) -> str | None:
        """A static recipe's correct count over the run's calibration seeds: "min–max (k seeds)"."""
        spread = self.accuracy.seeds.get(system)
        return f"{spread.min}–{spread.max} ({len(spread.counts)} seeds)" if spread else None

    def request_latency(self, system: str) -> LatencyStats | None:
        """Per-request round-trip of a system whose latency is the network's (retries excluded)."""
        scored = self.systems.get(system)
        return self.endpoint.latency_per_request if scored is not None and scored.latency == "network" else None

    def latency_at(self, batch_size: int, threads: int | None = None, padding: str = "dynamic") -> dict[str, LatencyMeasurement]:
        if not self.latency.done or not self.latency.results:
            return {}
        results = self.latency.results
        threads = threads if threads is not None else min(r.threads for r in results)
        return {r.system: r for r in results if (r.batch_size, r.threads, r.padding) == (batch_size, threads, padding)}

    def fp32_ort_rows(self) -> list[str]:
        """The speed-up baselines the latency stage used (params ``latency.baselines``: fp32 ONNX Runtime
        on the exported graph and on the fused graph int8 recipes start from)."""
        return list(self.latency.settings.get("baselines", [FP32_ORT]))

    def fp32_ort_baseline(self, threads: int = 1) -> tuple[str, float] | None:
        """The faster fp32 ONNX Runtime row at batch 1 (median of its per-round p50s)."""
        from .results.latency import faster_baseline

        name = faster_baseline(self.latency, self.fp32_ort_rows(), threads=threads) if self.latency.done else None
        return (name, self.latency_at(1, threads=threads)[name].p50_of_rounds_ms) if name else None

    def speedup(self, system: str, threads: int = 1, baselines: list[str] | None = None) -> str | None:
        """p50 speed-up at batch 1 against the faster of ``baselines`` (default: the fp32 ORT rows),
        per round: the median across rounds and its min–max."""
        from .results.latency import ratio_summary

        baselines = self.fp32_ort_rows() if baselines is None else baselines
        ratio = ratio_summary(self.latency, system, baselines, threads=threads) if self.latency.done and baselines else None
        if ratio is None:
            return None
        return f"{ratio.median:.2f}" if ratio.rounds == 1 else f"{ratio.median:.2f} ({ratio.low:.2f}–{ratio.high:.2f})"

    def same_runtime_fp32(self, system: str, threads: int = 1) -> list[str]:
        """The fp32 rows of the runtime that ran ``system`` (its backend's ``fp32_reference``), measured
        at batch 1; empty for an fp32 row itself, a remote endpoint or results that name no backend."""
        from .systems.base import backend

        measured = self.latency_at(1, threads=threads)
        found = measured.get(system)
        # Results from before latency rows named their backend: the quantize record names it.
        runtime = (found.backend or getattr(self.quantize.recipes.get(system), "backend", "")) if found else ""
        if not runtime:
            return []
        reference = getattr(backend(runtime), "fp32_reference", ())
        return [] if system in reference else [name for name in reference if name in measured]

    def peak_fraction(self, system: str, threads: int = 1):
        return next((f for f in self.latency.peak_fractions if (f.system, f.threads) == (system, threads)), None)

    def best_throughput(self) -> dict[str, tuple[float, str]]:
        """Each system's highest samples/s over every measured setting, and that setting."""
        best: dict[str, tuple[float, str]] = {}
        for r in self.latency.results if self.latency.done else []:
            setting = f"batch {r.batch_size}, {r.threads} thr" + ("" if r.padding == "dynamic" else f", {r.padding} padding")
            if r.system not in best or r.samples_per_second > best[r.system][0]:
                best[r.system] = (r.samples_per_second, setting)
        return best

    @property
    def int8_models(self) -> dict[str, RecipeResult]:
        """Every int8 model the run scored: the recipes, their calibration-seed copies and cross-fit folds."""
        folds = {fold.model.recipe["name"]: fold.model for folds in self.quantize.crossfit.values() for fold in folds}
        return {**self.quantize.recipes, **self.quantize.seed_variants, **folds}

    def size_mib(self, system: str) -> float | None:
        if system in self.latency.size_mib:
            return self.latency.size_mib[system]
        if system in self.quantize.recipes:
            return self.quantize.recipes[system].size_mib
        return self.model.size_mib.get(system)

    def timings(self) -> dict[str, dict]:
        path = self.runs_dir / TIMINGS_FILE
        return json.loads(path.read_text()) if path.is_file() else {}


def recommendation(res: RunResults, check) -> Recommendation:
    """The system to deploy under the run's ``check`` params (relative floor, agreement), chosen on the tuning split's select part."""
    chosen_on, scores = res.tuning_scores()
    batch1 = {name: r.round_p50_ms for name, r in res.latency_at(1, threads=1).items()}
    candidates = candidate_scores(scores, batch1, res.best_throughput())
    return recommend(candidates, check.min_relative_accuracy, check.min_agreement, chosen_on, res.reported_split)


# ----------------------------------------------------------------------------- the first screen


def int8_flags(cpu: dict) -> str:
    """ "AVX2 yes, AVX-512BW yes, AVX-VNNI no, AVX-512 VNNI yes, AMX-INT8 no"."""
    from .provenance import INT8_ISAS

    flags = cpu.get("isa", {})
    return ", ".join(f"{isa.label} {'yes' if flags.get(isa.flag) else 'no'}" for isa in reversed(INT8_ISAS))


def int8_instructions(cpu: dict) -> str:
    """ "AVX2 yes, AVX-512BW yes, AVX-VNNI no, AVX-512 VNNI yes, AMX-INT8 no (int8 kernel class avx512-vnni)"."""
    from .provenance import isa_class

    return f"{int8_flags(cpu)} (int8 kernel class {isa_class(cpu)})"


def cpu_summary(res: RunResults) -> str:
    """The CPU line: model, cores, the int8 class by name (what every int8 number depends on), its flags, threads."""
    from .provenance import isa_class

    cpu = res.provenance.get("cpu")
    if not cpu:
        return "CPU not recorded (no stage has run)."
    threads = {k: v for k, v in res.provenance.get("threads", {}).items() if v is not None}
    return (
        f"Measured on {cpu['model']} ({cpu['logical_cores']} logical cores), int8 class {isa_class(cpu)}. "
        f"Int8 instructions: {int8_flags(cpu)}."
    ) + (f" Thread settings: {', '.join(f'{k}={v}' for k, v in threads.items())}." if threads else "")


def _times(ratio: float, digits: int = 2) -> str:
    return f"{ratio:.{digits}f}x"


def _threads(count: int) -> str:
    return f"{count} thread" + ("" if count == 1 else "s")


def int8_ceiling(res: RunResults, rec: Recommendation | None = None) -> str:
    """What int8 can buy on this CPU, from the run's own peak sweep: the int8/fp32 matrix-multiply
    throughput ratio (the best int8 kernel over fp32, per measured shape, one thread), against the
    fastest int8 system's speed-up over fp32 ONNX Runtime (and the recommendation's), so a reader
    can tell "the CPU caps it" from "the recipe is poor". Says so when the peak was not measured."""
    from .peak import int8_over_fp32
    from .provenance import isa_class
    from .results.latency import ratio_summary

    limit = res.latency.peak if res.latency.done else None
    if limit is None or not limit.peaks:
        if not res.latency.done:
            why = f"latency {res.latency.status}"
        else:
            why = "a --quick run skips it" if res.latency.quick else "params latency.peak was off"
        return f"This run did not measure the CPU's int8/fp32 matrix-multiply peak ({why}): what int8 can buy here is not stated."
    threads = 1 if any(p.threads == 1 for p in limit.peaks) else min(p.threads for p in limit.peaks)
    ratios = int8_over_fp32(limit, threads)
    if not ratios:
        return f"This run's peak sweep has no fp32 and int8 pair at {_threads(threads)}: what int8 can buy here is not stated."
    rows = {p.shape: p.rows for p in limit.peaks}
    where = {"large": f"one {rows.get('large')}³ GEMM", "model": "this model's own GEMM shapes"}
    measured = ", ".join(f"{_times(r, 1)} on {where.get(shape, shape)}" for shape, r in ratios.items())
    cls = isa_class(res.provenance["cpu"]) if res.provenance.get("cpu") else "unknown"
    sentence = (
        f"On this CPU (int8 class {cls}) int8 matrix multiplies run at most {_times(max(ratios.values()), 1)} as fast as fp32's "
        f"({limit.runtime}, {_threads(threads)}: {measured}); only the matrix multiplies get faster, so that caps what int8 can buy here."
    )
    int8_names = {n for n, s in res.systems.items() if s.family == "int8"} | set(res.quantize.recipes)
    measured_int8 = [n for n in res.latency_at(1, threads=threads) if n in int8_names]
    speedups = {n: r for n in measured_int8 if (r := ratio_summary(res.latency, n, res.fp32_ort_rows(), threads=threads))}
    if not speedups:
        return sentence + f" No int8 system was timed at batch 1, {_threads(threads)}."
    best = max(speedups.values(), key=lambda r: r.median)
    sentence += (
        f" The fastest int8 here reaches {_times(best.median)} the speed of {best.baseline} "
        f"({best.system}, p50 at batch 1, {_threads(threads)})"
    )
    chosen = speedups.get(rec.system) if rec is not None and rec.system else None
    if chosen is not None and chosen.system != best.system:
        sentence += f"; the recommendation, {chosen.system}, {_times(chosen.median)}"
    return sentence + "."


def int8_slower_than_own_fp32(res: RunResults, threads: int = 1) -> str | None:
    """The int8 systems slower than their own runtime's fp32 at batch 1 (median of the per-round
    ratios below 1), each with the cause its backend class records for this int8 class (as
    profiled: ``int8_slowdown_causes``), or a note that it was not profiled. None when there is none."""
    from .provenance import isa_class
    from .results.latency import ratio_summary
    from .systems.base import backend

    cls = isa_class(res.provenance["cpu"]) if res.provenance.get("cpu", {}).get("isa") else None
    slower = []
    for name, found in res.latency_at(1, threads=threads).items():
        reference = res.same_runtime_fp32(name, threads)
        ratio = ratio_summary(res.latency, name, reference, threads=threads) if reference else None
        if ratio is None or ratio.median >= 1:
            continue
        runtime = found.backend or res.quantize.recipes[name].backend
        cause = getattr(backend(runtime), "int8_slowdown_causes", {}).get(cls)
        slower.append(
            f"{name} runs at {_times(ratio.median)} the speed of {ratio.baseline} (p50 at batch 1, {_threads(threads)}): "
            + (f"{cause}." if cause else f"the cause was not profiled on int8 class {cls or '(unknown: CPU not recorded)'}.")
        )
    return ("Int8 slower than its own runtime's fp32 here: " + " ".join(slower)) if slower else None


# What each NNCF overflow fix does to int8 weights (nncf.OverflowFix).
OVERFLOW_FIX_EFFECT = {
    "disable": "full-range 8-bit weights everywhere",
    "first_layer": "half-range weights for the first convolution only",
    "enable": "half-range weights in every layer",
}


def class_adaptations(res: RunResults) -> str | None:
    """Which recipes' settings the CPU class decided, and why, from the quantize records: an
    ``isa`` field resolved from the CPU or a named target (IsaChoice: target, changes, reason), and
    NNCF's ``overflow_fix: auto``. Copies (seeds, @val, folds) follow their recipe and are not listed.
    None when no recipe depends on the class."""
    from .provenance import best_int8_isa, isa_class

    groups: dict[str, list[str]] = {}
    for name, model in res.quantize.recipes.items():
        if model.variant_of:
            continue
        written = model.recipe.get("config", {})
        if model.isa:
            choice, changes = model.isa, model.isa.get("changes", {})
            changed = [f"{k}={v}" for k, v in changes.items() if written.get(k) != v]
            what = f"set {', '.join(changed)}" if changed else "kept the recipe's settings"
            source = "from the CPU" if choice.get("cpu") else "named in the recipe"
            key = f"isa {choice['requested']} → {choice['target']} ({source}): {what}, because {choice['reason']}"
            groups.setdefault(key, []).append(name)
        fix = (model.tuning or {}).get("overflow_fix")
        if written.get("overflow_fix") == "auto" and fix:
            cpu = model.provenance.get("cpu") or res.provenance.get("cpu")
            if cpu and cpu.get("isa"):
                best = best_int8_isa(cpu["isa"])
                vnni = best is not None and best.accumulates_in_32_bits
                why = f"{cpu['model']} ({isa_class(cpu)}) " + ("accumulates u8 x s8 products in 32 bits" if vnni else "has no VNNI or AMX")
            else:
                why = "the quantizing CPU's class (not recorded)"
            groups.setdefault(f"overflow fix auto → {fix} ({OVERFLOW_FIX_EFFECT.get(fix, fix)}), because {why}", []).append(name)
    if not groups:
        return None
    listed = "; ".join(f"{', '.join(names)}: {what}" for what, names in groups.items())
    return f"Recipes whose settings follow the CPU class: {listed}."


def other_isa_note(res: RunResults) -> str | None:
    """Which int8 models were quantized on a CPU of another int8 kernel class than the one measured
    (a cache filled elsewhere): their choices (INC's tuning, what an ``auto`` isa or overflow fix
    resolved to) were made on other kernels than the ones scored and timed. None when all match or
    a CPU is not recorded."""
    from .provenance import isa_class

    measured = res.provenance.get("cpu", {})
    if not measured.get("isa"):
        return None
    here = isa_class(measured)
    elsewhere: dict[tuple[str, str], list[str]] = {}
    for name, model in res.int8_models.items():
        cpu = model.provenance.get("cpu", {})
        if cpu.get("isa") and isa_class(cpu) != here:
            resolved = f" (isa auto: target {model.isa['target']})" if model.isa and model.isa.get("cpu") else ""
            elsewhere.setdefault((cpu["model"], isa_class(cpu)), []).append(name + resolved)
    if not elsewhere:
        return None
    where = "; ".join(f"{', '.join(names)} on {cpu_model} (int8 kernel class {kind})" for (cpu_model, kind), names in elsewhere.items())
    return (
        f"Quantized on another ISA: {where}; measured here on {measured['model']} (int8 kernel class {here}). "
        "Their accuracy-aware tuning and any ISA setting resolved from the CPU were decided on other int8 kernels "
        "than the ones scored and timed here."
    )


def headline_table(res: RunResults):
    """Every system: count, interval, change vs fp32, agreement, size, latency, speed-up, throughput.

    Returns the table and its footnotes. A remote endpoint's latency is a network round-trip, so it
    has its own column; a value not measured is "—" and a footnote says why."""
    import pandas as pd

    batch1 = res.latency_at(1, threads=1)
    throughput = res.best_throughput()
    baseline = res.fp32_ort_baseline()
    notes, marks = [], {}
    rows = []
    for name, r in res.systems.items():
        vs, lat, remote = r.vs_fp32, batch1.get(name), res.request_latency(name)
        tuned, cross_fitted = res.tuned_on_reported_split(name)
        label = name
        if tuned:
            label = f"{name} †"
            marks["tuned"] = (
                "† tuned on the reported split: its count has seen the examples it is scored on; the cross-fitted count beside it has not"
            )
        samples = throughput.get(name)
        peak = res.peak_fraction(name)
        fraction = peak.fraction_of_model_shape_peak if peak else None
        rows.append(
            {
                "system": label,
                "correct / n": f"{r.correct}/{r.n}",
                "accuracy (%)": f"{100 * r.accuracy:.2f}",
                "95 % CI (%)": f"{100 * r.accuracy_ci95[0]:.2f}–{100 * r.accuracy_ci95[1]:.2f}",
                "cross-fitted (correct / n)": cross_fitted,
                "over calibration seeds (correct)": res.seed_spread(name),
                "Δ vs fp32 (examples)": f"{vs.difference_examples:+d}" if vs else "baseline",
                "agreement with fp32 (%)": f"{100 * vs.agreement:.1f}" if vs else "baseline",
                "vs fp32 at the floor's margin (verdict)": vs.noninferiority.verdict if vs and vs.noninferiority else None,
                "McNemar p (Holm-corrected within the table)": f"{vs.mcnemar_holm_p:.3f}" if vs and vs.mcnemar_holm_p is not None else None,
                "size (MiB)": f"{res.size_mib(name):.1f}" if res.size_mib(name) else None,
                "p50 (ms, b1, 1 thr)": f"{lat.p50_of_rounds_ms:.2f}" if lat else None,
                "p90 (ms, b1, 1 thr)": f"{lat.p90_ms:.2f}" if lat and 90 in lat.supported_percentiles else None,
                "speed-up vs fp32 ORT (×, b1, 1 thr)": res.speedup(name),
                "speed-up vs its runtime's fp32 (×, b1, 1 thr)": res.speedup(name, baselines=res.same_runtime_fp32(name)),
                "fraction of peak (%, b1, 1 thr)": f"{100 * fraction:.0f}" if fraction else None,
                "memory added (MiB, b1, 1 thr)": f"{lat.rss_added_after_calls_mib:.0f}" if lat else None,
                "best throughput (samples/s)": f"{samples[0]:.0f}" if samples else None,
                "best throughput setting": samples[1] if samples else None,
                "round-trip p50 (ms, network)": f"{remote.p50_ms:.0f}" if remote else None,
            }
        )
    if not rows:
        return pd.DataFrame(), [f"No systems scored: accuracy stage {res.accuracy.status} ({res.accuracy.reason})."]
    table = pd.DataFrame(rows)
    if table["cross-fitted (correct / n)"].isna().all():
        table = table.drop(columns="cross-fitted (correct / n)")
    else:
        notes.append(
            "cross-fitted: tuned on one half of the reported split and scored on the other, then swapped; — where no choice saw it."
        )
    if table["over calibration seeds (correct)"].isna().all():
        table = table.drop(columns="over calibration seeds (correct)")
    else:
        notes.append("Over calibration seeds: the static recipe's count with each calibration seed, min–max; — for other systems.")
    if any(res.request_latency(n) for n in res.systems):
        notes.append("— under p50/p99: a remote endpoint's latency is a network round-trip, shown in its own column.")
    if not res.latency.done:
        notes.append(f"— under latency: not measured ({res.latency.status}: {res.latency.reason}).")
    elif table["p50 (ms, b1, 1 thr)"].isna().any():
        notes.append("— under latency: that system was not in the latency sweep at this setting.")
    if baseline:
        notes.append(
            f"Speed-up: p50 of {baseline[0]} (the faster fp32 ONNX Runtime row, {baseline[1]:.2f} ms) ÷ the system's p50, "
            "per interleaved round: median (min–max); p50 columns are the median of the per-round p50s, the statistic "
            "the speed-ups and the recommendation use. Against its runtime's fp32: OpenVINO int8 against fp32-openvino, "
            "PyTorch int8 against fp32-torch, ONNX Runtime int8 against the faster fp32 ORT row."
        )
    if res.latency.done and table["p90 (ms, b1, 1 thr)"].isna().any():
        notes.append(
            "— under p90: too few timed calls at that setting for that percentile (see the latency stage's supported percentiles)."
        )
    if res.latency.done and table["fraction of peak (%, b1, 1 thr)"].notna().any():
        notes.append(
            "Fraction of peak: the forward pass's multiply-adds at this CPU's measured GEMM peak (int8 and fp32 parts each at "
            "their own peak, model shapes) over the forward time measured; — where the latency stage did not compute it."
        )
    elif res.latency.done:
        table = table.drop(columns="fraction of peak (%, b1, 1 thr)")
    notes.append("Memory added: resident memory the model adds to its own process after load and the timed calls.")
    if table["round-trip p50 (ms, network)"].isna().all():
        table = table.drop(columns="round-trip p50 (ms, network)")
    else:
        notes.append("— under round-trip: a local system has no network round-trip.")
    return table, [*marks.values(), *notes]


def first_screen(res: RunResults, rec: Recommendation):
    """The answer, the CPU and its int8 instructions, and the headline table: what a reader needs first."""
    from IPython.display import HTML

    table, notes = headline_table(res)
    reported = ""
    if rec.system and rec.system in res.systems:
        scored = res.systems[rec.system]
        which = (
            "which also made the choice"
            if res.chosen_on_reported_split
            else "the development split: it made no choice in this run, though the presets were shaped on it"
        )
        reported = f" On {res.reported_split} ({which}) it scores {scored.correct}/{scored.n} = {100 * scored.accuracy:.2f} %."
    answer = f'<div class="sst2bench-answer"><b>Recommendation.</b> {html.escape(rec.sentence + reported)}</div>'
    explained = [cpu_summary(res), int8_ceiling(res, rec), class_adaptations(res), int8_slower_than_own_fp32(res)]
    cpu = f'<div class="sst2bench-cpu">{html.escape(" ".join(s for s in explained if s))}</div>'
    other_isa = other_isa_note(res)
    if other_isa:
        cpu += f'<div class="sst2bench-cpu"><b>{html.escape(other_isa)}</b></div>'
    footer = "".join(f"<div>{html.escape(note)}</div>" for note in notes)
    body = html_table(table) if len(table) else ""
    return HTML(page_assets() + answer + cpu + body + f'<div class="sst2bench-notes">{footer}</div>')


def choice_splits(res: RunResults, rec: Recommendation):
    """Which examples each choice of the run saw, from the results: the presets' development split,
    the trials' tune part, the recommendation's select part, and the final split that made none."""
    import pandas as pd

    tuned = sorted(n for n, r in res.quantize.recipes.items() if r.tuned_on == "tuning")
    on_reported = sorted(n for n, r in res.quantize.recipes.items() if r.tuned_on == "validation")
    parts = (res.model.tuning_split or {}) if res.model.done else {}
    tune_rows = (parts.get("tuning") or {}).get("rows")
    rows = [
        ("the presets' fixed settings (README lists them)", f"{res.reported_split}: the development split", res.accuracy.n or None),
    ]
    if tuned:
        rows.append((f"accuracy-aware trials: {', '.join(tuned)}", "the tuning split's tune part", tune_rows))
    if on_reported:
        rows.append(
            (
                f"accuracy-aware trials: {', '.join(on_reported)}",
                f"{res.reported_split}, the reported split (Intel's protocol)",
                res.accuracy.n,
            )
        )
    rows.append(("the recommendation and its rules", rec.chosen_on, res.accuracy.tuning.n if res.accuracy.tuning else res.accuracy.n))
    final = (
        (f"{res.final.source}: no choice, read after every other stage", res.final.n)
        if res.final.done
        else (f"not scored ({res.final.reason or 'the final stage has not run'})", None)
    )
    rows.append(("the final count", *final))
    return pd.DataFrame(rows, columns=["choice", "examples it saw", "n"]).astype({"n": "Int64"})


def recommendation_table(rec: Recommendation, res: RunResults):
    """Every candidate on the split the choice was made on (beside its count on the reported split),
    and why it was passed over."""
    import pandas as pd

    rows = []
    for c in rec.candidates:
        reported = res.systems.get(c.system)
        rows.append(
            {
                "system": c.system,
                "correct / n (where chosen)": f"{c.correct}/{c.n}",
                "needed (correct)": rec.needed_correct,
                "agreement with fp32 (%, where chosen)": f"{100 * c.agreement:.1f}",
                f"correct / n ({res.reported_split}, reported)": f"{reported.correct}/{reported.n}" if reported else None,
                "p50 (ms, b1, 1 thr: median of rounds, min–max)": (
                    f"{c.p50_ms_batch1_1thread:.2f} ({min(c.round_p50_ms):.2f}–{max(c.round_p50_ms):.2f})" if c.round_p50_ms else None
                ),
                "best throughput (samples/s)": f"{c.best_samples_per_second:.0f}" if c.best_samples_per_second is not None else None,
                "verdict": rec.excluded.get(c.system, "qualifies"),
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- sections


def published_comparison(res: RunResults, published_file: Path):
    """Intel's published numbers (read from a cited data file, units as published) beside this
    run's fp32 and its reproductions of Intel's int8 recipes, in the same units. Published counts are derived."""
    import pandas as pd
    import yaml

    published = yaml.safe_load(Path(published_file).read_text())
    n = published["evaluated_on"]["examples"]
    rows = [
        {
            "source": f"Intel, model card @ {published['source']['revision'][:7]}, read {published['source']['read_on']}",
            "system": row["system"],
            "metric (as published)": row["metric"],
            "value (as published)": f"{row['value']:.4f}",
            "correct / n": f"{round(row['value'] * n)}/{n} (derived)" if row["metric"] == "eval-accuracy" else "not published",
            "size (MB, 10⁶ bytes)": row["size_mb"],
        }
        for row in published["rows"]
    ]
    # This run's reproductions of Intel's two int8 models (PyTorch FX and ONNX), tuned on the tuning
    # split: picked by name, never by their score on the split they are compared on.
    picks = [(FP32_TORCH, res.systems.get(FP32_TORCH))] + [
        (name, res.systems[name]) for name in ("inc-torch", "inc-static") if name in res.systems
    ]
    for name, r in picks:
        if r is not None:
            size = res.size_mib(name)
            rows.append(
                {
                    "source": f"this run ({res.run})",
                    "system": name,
                    "metric (as published)": "accuracy",
                    "value (as published)": f"{r.accuracy:.4f}",
                    "correct / n": f"{r.correct}/{r.n}",
                    "size (MB, 10⁶ bytes)": round(size * 2**20 / 1e6) if size else None,
                }
            )
    return pd.DataFrame(rows), [
        f"Source: {published['source']['url']}",
        "Counts marked derived are the published fraction × the examples; Intel does not publish counts.",
        "eval-f1 is not an accuracy: no count is derived from it.",
    ]


def figure_accuracy(res: RunResults, floor: float):
    """Accuracy with its interval per system; ``floor`` is the run's relative floor (check params)."""
    import matplotlib.pyplot as plt

    names = list(res.systems)
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(names) + 1.2))
    for i, name in enumerate(names):
        r = res.systems[name]
        low, high = (100 * x for x in r.accuracy_ci95)
        ax.errorbar(
            100 * r.accuracy,
            i,
            xerr=[[100 * r.accuracy - low], [high - 100 * r.accuracy]],
            fmt="o",
            color=family_color(r.family),
            capsize=3,
        )
    if FP32_TORCH in res.systems:
        ax.axvline(
            100 * res.systems[FP32_TORCH].accuracy * floor,
            color="grey",
            ls="--",
            lw=1,
            label=f"{100 * floor:g} % of fp32 (the run's floor)",
        )
        ax.legend(loc="lower left", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"accuracy (%) on {res.reported_split} (95 % bootstrap interval)")
    ax.set_title("Accuracy per system")
    fig.tight_layout()
    return fig


def machine_limit_ms(res: RunResults) -> float | None:
    """The fastest batch-1, 1-thread forward pass the machine's measured matrix-multiply peak allows
    (at the model's own GEMM shapes): over every system, its forward time × its fraction of that peak."""
    limits = [
        f.forward_mean_ms * f.fraction_of_model_shape_peak
        for f in res.latency.peak_fractions
        if f.threads == 1 and f.fraction_of_model_shape_peak
    ]
    return min(limits) if limits else None


def limit_tables(res: RunResults):
    """The machine's limit, answered: the measured matrix-multiply peaks (with their method), each
    system's forward pass against them at batch 1, and one sentence on the headroom and what takes
    the rest of the time. Returns ``[(table, notes), ...]`` for ``show``; empty without a measurement."""
    import pandas as pd

    limit = res.latency.peak
    if limit is None or not res.latency.peak_fractions:
        return []
    peaks = pd.DataFrame(
        [
            {
                "precision": p.precision,
                "shape": p.shape,
                "rows × GEMMs (MACs per call)": f"{p.rows} rows, {p.macs:,} MACs",
                "threads": p.threads,
                "best (ms)": round(p.best_ms, 3),
                "peak (GOP/s)": round(p.gops_per_second),
            }
            for p in limit.peaks
        ]
    )
    fractions = sorted(res.latency.peak_fractions, key=lambda f: (f.threads, f.forward_mean_ms))
    systems = pd.DataFrame(
        [
            {
                "system": f.system,
                "threads": f.threads,
                "int8 MACs (M, per call)": round(f.macs_int8 / 1e6, 1),
                "fp32 MACs (M, per call)": round(f.macs_fp32 / 1e6, 1),
                "forward mean (ms)": round(f.forward_mean_ms, 2),
                "achieved (GOP/s)": round(f.achieved_gops_per_second),
                "fraction of peak, model shapes (%)": round(100 * f.fraction_of_model_shape_peak)
                if f.fraction_of_model_shape_peak
                else None,
                "headroom (×, 1 / fraction)": round(1 / f.fraction_of_model_shape_peak, 1) if f.fraction_of_model_shape_peak else None,
            }
            for f in fractions
        ]
    )
    int8 = [f for f in fractions if f.threads == 1 and f.macs_int8 > 0 and f.fraction_of_model_shape_peak]
    notes = [f"Method: {limit.method} Runtime {limit.runtime}, CPU {limit.cpu} ({', '.join(limit.isa)})."]
    notes += [f"Suspect peak, still after re-measuring (fractions built on it overstate the headroom): {flag}." for flag in limit.flags]
    if int8:
        fastest = min(int8, key=lambda f: f.forward_mean_ms)
        ideal = fastest.forward_mean_ms * fastest.fraction_of_model_shape_peak
        notes.append(
            f"How much faster could int8 get on this CPU? The fastest int8 forward pass at batch 1, 1 thread ({fastest.system}, "
            f"{fastest.forward_mean_ms:.2f} ms) would take {ideal:.2f} ms if its multiply-adds ran at the measured peaks: "
            f"{1 / fastest.fraction_of_model_shape_peak:.1f}x headroom. " + in_the_way(res, fastest.system)
        )
    return [(peaks, []), (systems, notes)]


def in_the_way(res: RunResults, system: str) -> str:
    """What takes a system's forward time besides its int8 GEMMs, from its measured op profile."""
    profile = res.latency.profiles.get(system)
    if profile is None or not profile.shares():
        return f"{system} was not profiled in this sweep (params latency.profile), so what takes the rest of its time is not measured here."
    shares = profile.shares()
    rest = sorted(((k, v) for k, v in shares.items() if k != "int8 GEMM" and v > 0), key=lambda item: -item[1])
    listed = ", ".join(f"{kind} {100 * share:.0f} %" for kind, share in rest[:4])
    return (
        f"Its profile ({profile.source}, batch 1, 1 thread): int8 GEMMs take {100 * shares.get('int8 GEMM', 0):.0f} % of the "
        f"forward time; the rest is {listed} (section 'Where the forward time goes')."
    )


def op_profile_table(res: RunResults):
    """Per profiled system: ms per call by kind of op and each kind's share, fastest first; and notes."""
    import pandas as pd

    from .profile import CATEGORIES

    profiles = res.latency.profiles
    if not profiles:
        return None, ["No op profile in this sweep (params latency.profile is off, or a --quick sweep)."]
    rows = []
    for name, profile in sorted(profiles.items(), key=lambda item: sum(item[1].ms_per_call.values())):
        shares = profile.shares()
        row = {"system": name, "profiled ms per call": round(sum(profile.ms_per_call.values()), 2)}
        row.update({f"{kind} (%)": round(100 * shares.get(kind, 0.0), 1) for kind in CATEGORIES})
        row["top op types (ms per call)"] = ", ".join(f"{op} {ms:.2f}" for op, ms in list(profile.top_ops.items())[:4])
        rows.append(row)
    sources = sorted({p.source for p in profiles.values()})
    notes = [
        f"Batch 1, 1 thread, {next(iter(profiles.values())).calls} sample sentences one per call, after an untimed pass over them. "
        f"Sources: {'; '.join(sources)}. Profiled time is the kernels' own (what the profiler attributes to ops), "
        "so it is below the timed forward pass; GEMMs between two activations inside attention count as attention, "
        "and a fused (Q)Attention node counts whole as attention, its Q/K/V projections included."
    ]
    return pd.DataFrame(rows), notes


def figure_op_profile(res: RunResults):
    """Stacked bars: each profiled system's forward time per call by kind of op."""
    import matplotlib.pyplot as plt

    from .profile import CATEGORIES

    profiles = sorted(res.latency.profiles.items(), key=lambda item: sum(item[1].ms_per_call.values()))
    if not profiles:
        return None
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(profiles) + 1.6))
    left = [0.0] * len(profiles)
    colors = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#999999"]
    for kind, color in zip(CATEGORIES, colors):
        widths = [p.ms_per_call.get(kind, 0.0) for _, p in profiles]
        ax.barh([name for name, _ in profiles], widths, left=left, color=color, label=kind)
        left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlabel("profiled ms per call (batch 1, 1 thread)")
    ax.legend(fontsize=8, loc="lower right", frameon=False)
    ax.set_title("Where the forward time goes")
    fig.tight_layout()
    return fig


def figure_pareto(res: RunResults):
    """Accuracy against p50 latency at batch 1, 1 thread: every point numbered, the legend names it."""
    import matplotlib.pyplot as plt

    lat = res.latency_at(1, threads=1)
    points = sorted((lat[n].p50_of_rounds_ms, 100 * r.accuracy, n, r.family) for n, r in res.systems.items() if n in lat)
    fig, ax = plt.subplots(figsize=(10, 5.2))
    front, best = [], -1.0
    for x, y, *_ in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    markers = "osD^vP*Xh<>p"
    for i, (x, y, name, family) in enumerate(points, start=1):
        ax.scatter(x, y, color=family_color(family), marker=markers[i % len(markers)], s=55, zorder=3, label=f"{i}  {name}")
        ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(5, 5 if i % 2 else -11), fontsize=8)
    if len(front) > 1:
        ax.plot(*zip(*front), color="grey", ls="--", lw=1, label="Pareto front")
    limit = machine_limit_ms(res)
    if limit:
        ax.axvline(limit, color="crimson", lw=1, label=f"machine limit: GEMMs at measured peak ({limit:.2f} ms)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_xlabel("p50 latency (ms), batch 1, 1 thread")
    ax.set_ylabel(f"accuracy (%) on {res.reported_split}")
    ax.set_title("Accuracy against latency (numbers name the points; blue fp32, orange int8)")
    fig.tight_layout()
    return fig


def figure_latency(res: RunResults):
    import matplotlib.pyplot as plt

    lat = res.latency_at(1, threads=1)
    names = sorted(lat, key=lambda n: lat[n].p50_ms)
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(names) + 1.2))
    ax.boxplot([lat[n].durations_ms for n in names], vert=False, showfliers=True)
    ax.set_yticks(range(1, len(names) + 1), names)
    ax.set_xlabel("ms per call (batch 1, 1 thread, dynamic padding)")
    ax.set_title("Latency distribution per system")
    fig.tight_layout()
    return fig


def figure_size(res: RunResults):
    import matplotlib.pyplot as plt

    names = [n for n in res.systems if res.size_mib(n)]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(names) + 1.2))
    ax.barh(names, [res.size_mib(n) for n in names], color=[family_color(res.systems[n].family) for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("model file size (MiB)")
    ax.set_title("Size on disk")
    fig.tight_layout()
    return fig


def studies_note(res: RunResults) -> str | None:
    """The long studies the run's quantize stage skipped (params ``studies: false``), named in one
    line; None when every study its params ask for ran (or the stage did not run)."""
    from .studies import studies_skipped

    params = res.quantize.provenance.get("params") if res.quantize.done else None
    off = studies_skipped(params) if params else []
    if not off:
        return None
    run = params.get("run", "<run>")
    return (
        f"**Long studies off** (params `studies: false`): {'; '.join(off)} did not run, so their sections are empty. "
        f"`studies: true` in `params/{run}.yaml` runs them."
    )


def calibration_in_use(res: RunResults) -> str:
    """Which calibration each static recipe of the run was made with (composition, sentences, method),
    read from the quantize records; copies (seeds, @val, folds) follow their recipe and are not listed."""
    if not res.quantize.done:
        return f"Which calibration the static recipes used is not known: quantize {res.quantize.status}."
    groups: dict[str, list[str]] = {}
    for name, model in res.quantize.recipes.items():
        calibration = (model.recipe or {}).get("calibration")
        if model.variant_of or not calibration:
            continue
        what = f"{calibration.get('composition', 'rows')}, {calibration.get('samples')} samples, {calibration.get('method')}"
        groups.setdefault(what, []).append(name)
    if not groups:
        return "No static recipe in this run: nothing was calibrated."
    listed = "; ".join(f"{what}: {', '.join(names)}" for what, names in groups.items())
    return (
        f"This run's static recipes calibrated on {listed}. Compositions: rows = any train row (mostly SST's short phrases), "
        "sentences = whole train sentences; both leave out the tuning split's sentences and their phrases."
    )


def calibration_study(res: RunResults):
    """params ``quantize.calibration_study`` on the tune part: the table and a figure of each
    composition's change against fp32 by calibration size, or (None, why not) when it did not run."""
    import matplotlib.pyplot as plt
    import pandas as pd

    points = res.quantize.calibration_study
    if not points:
        return None, "Calibration study not run (params quantize.calibration_study is off for this run)."
    table = pd.DataFrame(
        [
            {
                "recipe": p.recipe,
                "composition": p.composition,
                "calibration sentences": p.samples,
                "mean words": f"{p.mean_words:.1f}",
                "correct / n (tune part)": f"{p.correct}/{p.n}",
                "Δ vs fp32 graph (examples)": f"{p.correct - p.fp32_correct:+d}",
                "agreement with fp32 (%)": f"{100 * p.agreement:.1f}",
            }
            for p in points
        ]
    )
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for kind in dict.fromkeys(p.composition for p in points):
        mine = sorted((p.samples, p.correct - p.fp32_correct) for p in points if p.composition == kind)
        ax.plot(*zip(*mine), marker="o", label=f"{kind} (mean {next(p.mean_words for p in points if p.composition == kind):.0f} words)")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("calibration sentences")
    ax.set_ylabel("Δ correct vs fp32 (examples)")
    ax.set_title(f"{points[0].recipe}: calibration size and composition, tune part (n={points[0].n})")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return table, fig


def figure_confusion(res: RunResults):
    """Every system's confusion matrix as one row of a heatmap: TN, FP, FN, TP counts."""
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(res.systems)
    cells = np.array([[m[0][0], m[0][1], m[1][0], m[1][1]] for m in (res.systems[n].confusion_matrix for n in names)])
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(names) + 1.3))
    shown = cells / cells.sum(axis=0, keepdims=True).clip(min=1)  # shade within a column, so small cells show differences
    ax.imshow(shown, cmap="Blues", aspect="auto")
    for i in range(len(names)):
        for j in range(4):
            ax.text(j, i, cells[i, j], ha="center", va="center", fontsize=8)
    columns = ["gold neg →\npred neg", "gold neg →\npred pos", "gold pos →\npred neg", "gold pos →\npred pos"]
    ax.set_xticks(range(4), columns, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.xaxis.tick_top()
    ax.grid(False)
    ax.set_title("Confusion matrices (counts; shade compares systems within a column)", fontsize=9, pad=28)
    fig.tight_layout()
    return fig


def disagreement_matrix(res: RunResults, systems: dict[str, SystemAccuracy] | None = None):
    """Sentences × systems: every example on which some system and fp32 PyTorch predict differently;
    a cell shows that system's label and probability where it differs, blank where it agrees."""
    import pandas as pd

    systems = res.systems if systems is None else systems
    names = {0: "neg", 1: "pos"}
    rows: dict[int, dict] = {}
    for system, scored in systems.items():
        for d in scored.vs_fp32.disagreements if scored.vs_fp32 else []:
            row = rows.setdefault(
                d.idx,
                {"idx": d.idx, "sentence": d.sentence, "gold": names[d.gold], "fp32": f"{names[d.baseline_label]} {d.baseline_score:.2f}"},
            )
            row[system] = f"{names[d.candidate_label]} {d.candidate_score:.2f}" + (" ✓" if d.candidate_label == d.gold else " ✗")
    disagreeing = [s for s, r in systems.items() if r.vs_fp32 and r.vs_fp32.disagreements]
    table = pd.DataFrame(list(rows.values()), columns=["idx", "sentence", "gold", "fp32", *disagreeing]).fillna("")
    table.insert(4, "systems disagreeing", (table[disagreeing] != "").sum(axis=1) if disagreeing else 0)
    return table.sort_values(["systems disagreeing", "idx"], ascending=[False, True])


def show_disagreements(res: RunResults, systems: dict[str, SystemAccuracy] | None = None, where: str = ""):
    """The disagreement matrix, collapsed: a summary line opens it."""
    from IPython.display import HTML

    table = disagreement_matrix(res, systems)
    if not len(table):
        return HTML(f"<p>Every system agrees with fp32 on every example{where}.</p>")
    summary = (
        f"{len(table)} sentences{where} on which at least one system and fp32 PyTorch disagree (click to open; click a header to sort)"
    )
    legend = "A cell: that system's label and probability where it differs from fp32 (✓ right, ✗ wrong); blank: it agrees."
    return HTML(
        f"<details><summary>{html.escape(summary)}</summary>"
        f'<div class="sst2bench-notes">{html.escape(legend)}</div>{html_table(table, text_columns=("sentence",))}</details>'
    )


def provenance_table(res: RunResults):
    import pandas as pd

    source = res.provenance
    if not source:
        return pd.DataFrame()
    isa = ", ".join(flag for flag, present in source["cpu"]["isa"].items() if present)
    rows = {
        "git commit": source["git_commit"],
        "CPU": f"{source['cpu']['model']} ({source['cpu']['logical_cores']} logical cores)",
        "ISA flags": isa,
        "python": source["python"],
        **{f"package {k}": v for k, v in source["packages"].items() if v},
        "threads (env)": json.dumps({k: v for k, v in source["threads"].items() if v is not None}),
        "fp32 weights sha256": res.fp32_weights.sha256 or f"unknown: {res.fp32_weights.source}",
        "timestamp": source["timestamp"],
    }
    return pd.DataFrame({"what": list(rows), "value": list(rows.values())})


def cloudflare_summary(res: RunResults) -> str:
    """Markdown: what the endpoint scored, how fast, the estimated cost (with the price's source), and
    when the replies were collected."""
    import datetime as dt

    remote = res.endpoint
    if not remote.done:
        return f"**Not measured ({remote.status}).** {remote.reason}"
    when = [
        dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") for moment in (remote.collected_from, remote.collected_to)
    ]
    system, latency, cost = remote.system, remote.latency_per_request, remote.cost_actual or {}
    price = (
        f" Price from {cost['price_source']} (read {cost['price_read_on']})." if cost.get("price_source") else " Price source not recorded."
    )
    return (
        f"Endpoint: {remote.endpoint} (`{remote.model}`). "
        f"Accuracy {system.correct}/{system.n} = {100 * system.accuracy:.2f} %; "
        f"per request p50 {latency.p50_ms:.0f} ms, p99 {latency.p99_ms:.0f} ms (network included, "
        f"{remote.retries} retries excluded). Replies collected {when[0]} – {when[1]}; "
        f"this run sent {remote.usage['sent']} requests and took {remote.usage['from_cache']} from the cache. "
        f"**Estimated cost** of what was sent: {cost.get('input_tokens', 0)} input tokens, ${cost.get('dollars', 0):.4f}, "
        f"{cost.get('neurons', 0):.0f} neurons — an estimate from the tokenizer's count and the published price: "
        f"the endpoint reports no usage.{price}"
    )


def stage_status(res: RunResults):
    """Each stage's status, note and wall time (``timings.json``, written by the pipeline)."""
    import pandas as pd

    timings = res.timings()
    rows = []
    for name in STAGE_RESULTS:
        timing = timings.get(name, {})
        rows.append(
            {
                "stage": name,
                "status": res.stage(name).status,
                "wall time this build (s)": timing.get("seconds"),
                "wall time when last executed (s)": timing.get("executed_seconds"),
                "last executed (UTC)": timing.get("executed_at"),
                "note": res.stage(name).reason or "",
            }
        )
    return pd.DataFrame(rows), ["A cached stage took only the time to check its key; its last execution's wall time is beside it."]


def eval_set_table(res: RunResults, name: str):
    """Every system on one of the run's other evaluation sets, paired with fp32 PyTorch there."""
    import pandas as pd

    found = res.accuracy.sets[name]
    rows = []
    for system, r in found.systems.items():
        vs = r.vs_fp32
        rows.append(
            {
                "system": system,
                "correct / n": f"{r.correct}/{r.n}",
                "accuracy (%)": f"{100 * r.accuracy:.2f}",
                "95 % CI (%)": f"{100 * r.accuracy_ci95[0]:.2f}–{100 * r.accuracy_ci95[1]:.2f}",
                "Δ vs fp32 (examples)": f"{vs.difference_examples:+d}" if vs else "baseline",
                "McNemar p (Holm-corrected within the set)": f"{vs.mcnemar_holm_p:.3f}" if vs and vs.mcnemar_holm_p is not None else None,
                "vs fp32 at the floor's margin (verdict)": vs.noninferiority.verdict if vs and vs.noninferiority else None,
                "agreement with fp32 (%)": f"{100 * vs.agreement:.1f}" if vs else "baseline",
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ across machines


def machine_label(provenance: dict) -> str:
    from .provenance import isa_class

    cpu = provenance.get("cpu", {})
    # One brand string covers several generations ("AMD EPYC" is Zen 3 and Zen 4 here): name the part too.
    part = f" (family {cpu['family']}, model {cpu['model_number']})" if cpu.get("family") and cpu.get("model_number") else ""
    return f"{cpu.get('model', 'unknown CPU')}{part} · {isa_class(cpu) if cpu.get('isa') else 'ISA unknown'}"


def machine_comparison(run_dirs: list[Path]):
    """One latency comparison across runs measured on different machines, keyed by CPU model and
    ISA class: per system, each machine's p50 at batch 1 / 1 thread, its speed-up against that
    machine's faster fp32 ORT row, and that machine's own correct count (int8 arithmetic differs by ISA)."""
    return _machine_table([RunResults.load(d) for d in run_dirs])


def _machine_table(runs: list[RunResults]):
    import pandas as pd

    labels = []
    for res in runs:
        if not res.latency.done:
            raise UserError(f"{res.runs_dir} has no latency results ({res.latency.status}: {res.latency.reason})")
        label = machine_label(res.latency.provenance)
        labels.append(label if label not in labels else f"{label} ({res.runs_dir})")
    systems = list(dict.fromkeys(name for res in runs for name in res.systems if res.systems[name].latency == "call"))
    rows = []
    for name in systems:
        row = {"system": name}
        for label, res in zip(labels, runs):
            lat, scored = res.latency_at(1, threads=1).get(name), res.systems.get(name)
            row[f"p50 (ms, b1, 1 thr) · {label}"] = f"{lat.p50_of_rounds_ms:.2f}" if lat else None
            row[f"speed-up vs fp32 ORT (×) · {label}"] = res.speedup(name)
            row[f"correct / n · {label}"] = f"{scored.correct}/{scored.n}" if scored else None
        rows.append(row)
    return pd.DataFrame(rows), labels


# What the page is titled when the runs' fp32 models are not shown to be one (with --allow-different-models).
DIFFERENT_MODELS = "different fp32 models"
UNVERIFIED_MODELS = "fp32 models not verified to be the same"


def fp32_models_verdict(runs: list[RunResults]) -> str | None:
    """None when every run's fp32 weights have one known sha256 (one model measured on several
    machines); else what the page must say: different models, or models not verified to be one."""
    shas = [res.fp32_weights.sha256 for res in runs]
    known = {sha for sha in shas if sha}
    if len(known) > 1:
        return DIFFERENT_MODELS
    return None if None not in shas else UNVERIFIED_MODELS


def _weights_text(weights: Fp32Weights) -> str:
    return f"fp32 weights sha256 {weights.sha256}" if weights.sha256 else f"fp32 weights sha256 unknown ({weights.source})"


def comparison_page(run_dirs: list[Path], allow_different_models: bool = False) -> str:
    """A self-contained HTML page of ``machine_comparison``, with each run's fp32 weights sha256.

    Timings and counts across machines compare machines only when every run measured the same fp32
    model (a fine-tune repeated on another CPU gives other weights): runs whose fp32 sha256s differ,
    or cannot be known, are refused unless ``allow_different_models``, which titles the page so."""
    runs = [RunResults.load(d) for d in run_dirs]
    verdict = fp32_models_verdict(runs)
    if verdict and not allow_different_models:
        listed = "; ".join(f"{res.runs_dir}: {_weights_text(res.fp32_weights)}" for res in runs)
        raise UserError(f"not comparable, {verdict}: {listed}. Pass --allow-different-models to render the page anyway, titled '{verdict}'")
    table, labels = _machine_table(runs)
    machines = "".join(
        f"<li>{html.escape(label)}: <code>{html.escape(str(res.runs_dir))}</code> · {html.escape(_weights_text(res.fp32_weights))}"
        + (f" ({html.escape(res.fp32_weights.source)})" if res.fp32_weights.sha256 else "")
        + "</li>"
        for label, res in zip(labels, runs, strict=True)
    )
    if verdict:
        title = f"Latency across machines: {verdict}"
        model_note = (
            f"<div class='sst2bench-answer'><b>Warning: {html.escape(verdict)}.</b> These runs were not shown to measure one fp32 "
            "model (see each run's fp32 weights sha256 above): differences between machines mix the model's differences with the "
            "CPUs', in accuracy counts and in speed-ups alike.</div>"
        )
    else:
        title = "Latency across machines"
        model_note = (
            f"<div class='sst2bench-notes'>One fp32 model on every machine: fp32 weights sha256 {runs[0].fp32_weights.sha256}.</div>"
        )
    notes = (
        "Timings from different machines are separate sweeps: compare speed-ups (each against its own machine's fp32 ORT), "
        "not milliseconds across columns. — : that system was not measured on that machine."
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>sst2bench: {html.escape(title.lower())}</title>"
        f"{page_assets()}</head><body><h1>{html.escape(title)}</h1><ul>{machines}</ul>{model_note}"
        f"{html_table(table)}<div class='sst2bench-notes'>{html.escape(notes)}</div></body></html>"
    )


# ---------------------------------------------------------------- one recipe on several fp32 checkpoints


def checkpoint_table(runs: list[RunResults]):
    """Per int8 system: its paired change against its own run's fp32 (fp32-torch) in each run, on the
    development split and on the final split where scored, and the range across the runs. With
    runs that differ only in the fine-tune's seed, the range is how much of an int8 delta belongs to
    the checkpoint rather than to the recipe."""
    import pandas as pd

    systems = list(dict.fromkeys(n for res in runs for n, s in res.accuracy.systems.items() if s.family == "int8"))
    rows = []
    for name in systems:
        row, deltas = {"system": name}, []
        for res in runs:
            for split, scored in (("validation", res.accuracy.systems), ("final", res.final.systems if res.final.done else {})):
                vs = scored[name].vs_fp32 if name in scored else None
                verdict = f" {vs.noninferiority.verdict}" if vs and vs.noninferiority else ""
                row[f"Δ vs fp32 · {split} · {res.run}"] = (
                    f"{vs.difference_examples:+d} ({vs.candidate_correct}/{vs.n}){verdict}" if vs else None
                )
                if vs and split == "validation":
                    deltas.append(vs.difference_examples)
        row["Δ validation, min to max over checkpoints"] = f"{min(deltas):+d} to {max(deltas):+d}" if len(deltas) == len(runs) else None
        rows.append(row)
    return pd.DataFrame(rows).dropna(axis=1, how="all")  # a run without a final split has no final columns


def checkpoint_page(run_dirs: list[Path]) -> str:
    """``checkpoint_table`` as a page, for runs of one protocol on one CPU class whose fp32 checkpoints
    differ (e.g. the stand-in fine-tuned with another seed: params ``standin-seed2``). Runs on other
    CPU classes (other int8 kernels), with other validation sizes, or of one fp32 model are refused."""
    from .provenance import isa_class

    runs = [RunResults.load(d) for d in run_dirs]
    if len(runs) < 2 or not all(res.accuracy.done for res in runs):
        raise UserError(f"give two or more run folders whose accuracy stage has run: {', '.join(map(str, run_dirs))}")
    names = [res.run for res in runs]
    if len(set(names)) < len(names):
        raise UserError(
            f"two run folders share a run name ({', '.join(map(str, run_dirs))}): each checkpoint's columns are named by its run"
        )
    unrecorded = [res.run for res in runs if not res.accuracy.provenance.get("cpu", {}).get("isa")]
    if unrecorded:
        raise UserError(f"runs {unrecorded} do not record their CPU's int8 instructions: their int8 class cannot be compared")
    classes = {res.run: isa_class(res.accuracy.provenance["cpu"]) for res in runs}
    sizes = {res.run: res.accuracy.n for res in runs}
    if len(set(classes.values())) > 1 or len(set(sizes.values())) > 1:
        raise UserError(
            f"not one protocol on one CPU class: int8 class {classes}, validation size {sizes}; compare checkpoints on one machine"
        )
    shas = [res.fp32_weights.sha256 for res in runs]
    if None in shas or len(set(shas)) < len(shas):
        listed = "; ".join(f"{res.run}: {_weights_text(res.fp32_weights)}" for res in runs)
        raise UserError(f"each run must have its own known fp32 checkpoint ({listed}): runs of one model show no checkpoint variance")
    checkpoints = "".join(
        f"<li><code>{html.escape(str(res.runs_dir))}</code>: fp32 {res.accuracy.systems[FP32_TORCH].correct}/{res.accuracy.n} on validation"
        + (
            f", {res.final.systems[FP32_TORCH].correct}/{res.final.n} on the final split"
            if res.final.done and FP32_TORCH in res.final.systems
            else ""
        )
        + f" · {html.escape(_weights_text(res.fp32_weights))}</li>"
        for res in runs
    )
    notes = (
        f"Every run on int8 class {next(iter(classes.values()))}. Δ: the int8 system's correct count minus its own run's fp32 "
        "(fp32-torch) on the same examples, with its count and its non-inferiority verdict at the run's floor. "
        "The last column is the spread of the validation Δ over the checkpoints: a recipe's delta measured on one "
        "checkpoint is known only to within it."
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>sst2bench: int8 deltas across fp32 checkpoints</title>"
        f"{page_assets()}</head><body><h1>int8 deltas across fp32 checkpoints</h1><ul>{checkpoints}</ul>"
        f"{html_table(checkpoint_table(runs))}<div class='sst2bench-notes'>{html.escape(notes)}</div></body></html>"
    )


def write_checkpoints(run_dirs: list[Path], output: Path | None = None) -> Path:
    """``reports/checkpoints/index.html`` (or ``output``): ``checkpoint_page`` of the run folders."""

    return _write_page(checkpoint_page([Path(d) for d in run_dirs]), output, "checkpoints")


def _write_page(page: str, output: Path | None, folder: str) -> Path:
    """``page`` at ``output``, or at ``reports/<folder>/index.html`` of the project."""
    from .paths import project_root

    path = Path(output) if output else project_root() / "reports" / folder / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


def write_comparison(run_dirs: list[Path], output: Path | None = None, allow_different_models: bool = False) -> Path:
    """``reports/compare/index.html`` (or ``output``): runs measured on different machines as one latency comparison."""

    missing = [str(d) for d in run_dirs if not (Path(d) / "latency.json").is_file()]
    if missing:
        raise UserError(f"no latency.json in {', '.join(missing)}: give run folders (runs/<run>) whose latency stage has run")
    return _write_page(comparison_page([Path(d) for d in run_dirs], allow_different_models), output, "compare")
