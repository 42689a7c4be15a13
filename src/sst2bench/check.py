"""The accuracy gate for CI: a run's results against its committed baseline and the params' rules.

Rules: every int8 system keeps at least 99 % of fp32's accuracy (Intel's and MLPerf's criterion);
no system loses more examples against its baseline than the 95 % bootstrap interval allows (or a
configured number); optionally, int8 stays at least N times faster than fp32 (ratios only).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import RunConfig
from .errors import UserError
from .provenance import git_commit

BASELINES_DIR = Path("params") / "baselines"
FP32 = "fp32-torch"


@dataclass(frozen=True)
class RuleResult:
    rule: str
    system: str
    value: str
    limit: str
    passed: bool
    why: str


def _results(cfg: RunConfig) -> dict:
    path = cfg.runs_dir / "accuracy.json"
    if not path.is_file():
        raise UserError(f"{path} is missing: run `make report RUN={cfg.run}` (or `sst2bench quantize --run {cfg.run}`) first")
    accuracy = json.loads(path.read_text())
    if accuracy.get("status") != "done":
        raise UserError(f"run {cfg.run!r} has no accuracy results: {accuracy.get('reason')}")
    return accuracy


def interval_budget(system: dict) -> int:
    """Examples the 95 % bootstrap interval spans on either side: losing more is not noise."""
    low, high = system["accuracy_ci95"]
    return max(1, round((high - low) / 2 * system["n"]))


def relative_accuracy_rule(systems: dict, minimum: float) -> list[RuleResult]:
    fp32 = systems.get(FP32)
    if fp32 is None:
        raise UserError(f"no {FP32} system in the results: the relative-accuracy rule needs the fp32 baseline")
    out = []
    for name, r in systems.items():
        if r["family"] != "int8":
            continue
        ratio = r["correct"] / fp32["correct"]
        passed = ratio >= minimum
        why = f"{r['correct']}/{r['n']} vs fp32 {fp32['correct']}/{fp32['n']}" + ("" if passed else f": keeps {100 * ratio:.2f} % of fp32, below {100 * minimum:g} %")
        out.append(RuleResult("keeps ≥ {:g} % of fp32 accuracy".format(100 * minimum), name, f"{100 * ratio:.2f} %", f"≥ {100 * minimum:g} %", passed, why))
    return out


def baseline_rule(systems: dict, baseline: dict, max_lost: int) -> list[RuleResult]:
    out = []
    for name, base in baseline["systems"].items():
        current = systems.get(name)
        budget = max_lost if max_lost >= 0 else interval_budget(base)
        if current is None:
            out.append(RuleResult("no loss against baseline", name, "missing", f"≤ {budget} lost", False, "in the baseline but not in this run's results"))
            continue
        if current["n"] != base["n"]:
            out.append(RuleResult("no loss against baseline", name, f"n={current['n']}", f"n={base['n']}", False, "scored on a different number of examples than the baseline"))
            continue
        lost = base["correct"] - current["correct"]
        passed = lost <= budget
        why = f"{current['correct']}/{current['n']} now, {base['correct']}/{base['n']} in the baseline" + ("" if passed else f": lost {lost} examples, more than the {budget} allowed")
        out.append(RuleResult("no loss against baseline", name, f"{-lost:+d} examples", f"≥ -{budget}", passed, why))
    return out


def speed_rule(cfg: RunConfig, systems: dict, minimum: float) -> list[RuleResult]:
    path = cfg.runs_dir / "latency.json"
    latency = json.loads(path.read_text()) if path.is_file() else {}
    ratios = latency.get("speedup_vs_fp32_ort", {})
    if not ratios:
        return [RuleResult(f"int8 ≥ {minimum:g}x fp32-ort speed", "all", "not measured", f"≥ {minimum:g}x", False, f"{path} has no batch-1 ratios")]
    return [
        RuleResult(f"int8 ≥ {minimum:g}x fp32-ort speed", name, f"{ratios[name]:.2f}x", f"≥ {minimum:g}x", ratios[name] >= minimum, "p50 ratio at batch 1, 1 thread, one sweep")
        for name, r in systems.items()
        if r["family"] == "int8" and name in ratios
    ]


def baseline_path(cfg: RunConfig, override: str | None = None) -> Path:
    return Path(override) if override else BASELINES_DIR / f"{cfg.run}.json"


def write_baseline(cfg: RunConfig, path: Path) -> dict:
    systems = _results(cfg)["systems"]
    baseline = {
        "run": cfg.run,
        "git_commit": git_commit(),
        "systems": {name: {"correct": r["correct"], "n": r["n"], "accuracy": r["accuracy"], "accuracy_ci95": r["accuracy_ci95"]} for name, r in systems.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, indent=2) + "\n")
    return baseline


def run_check(cfg: RunConfig, baseline_file: str | None = None) -> list[RuleResult]:
    systems = _results(cfg)["systems"]
    results = relative_accuracy_rule(systems, cfg.check.min_relative_accuracy)
    path = baseline_path(cfg, baseline_file)
    if path.is_file():
        results += baseline_rule(systems, json.loads(path.read_text()), cfg.check.max_lost_examples)
    elif baseline_file:
        raise UserError(f"baseline {path} does not exist")
    else:
        results.append(RuleResult("no loss against baseline", "all", "no baseline", str(path), False, f"{path} does not exist; create it with `sst2bench check --run {cfg.run} --update-baseline`"))
    if cfg.check.min_speedup > 0:
        results += speed_rule(cfg, systems, cfg.check.min_speedup)
    return results


def format_table(results: list[RuleResult]) -> str:
    header = f"{'':4} {'rule':<34} {'system':<28} {'value':>14} {'limit':>10}  why"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{'PASS' if r.passed else 'FAIL':4} {r.rule:<34} {r.system:<28} {r.value:>14} {r.limit:>10}  {r.why}")
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


def write_junit(results: list[RuleResult], path: Path, run: str) -> None:
    """JUnit XML, one test case per rule and system, so CI systems show the gate."""
    suite = ET.Element("testsuite", name=f"sst2bench-check-{run}", tests=str(len(results)), failures=str(sum(not r.passed for r in results)))
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"sst2bench.check.{run}", name=f"{r.rule} [{r.system}]")
        if not r.passed:
            ET.SubElement(case, "failure", message=r.why).text = json.dumps(asdict(r))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
