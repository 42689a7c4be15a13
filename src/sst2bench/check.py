"""The accuracy gate for CI: a run's per-example predictions against its committed baseline.

Predictions on a fixed split are deterministic for one CPU class, so the gate compares paired,
per-example evidence rather than intervals:

(a) every int8 system keeps at least the run's relative floor (``check.min_relative_accuracy``,
    Intel's and MLPerf's 99 %) of fp32's correct count, in whole examples;
(b) every int8 system predicts the label fp32 of the same run predicts on at least
    ``check.min_fp32_agreement`` of the examples (flips that cancel out in the count still count);
(c) against the baseline of this CPU's ISA class, the number of examples a system now gets wrong
    that it got right there (gross, not net) stays within ``check.max_newly_wrong``;
(d) every system the run produces is in the baseline, and every baseline system was produced;
(e) optionally, int8 stays ``check.min_speedup`` times faster than fp32 ONNX Runtime.

(a) and (b) need no stored baseline, so they run on every CPU. Baselines live in
``params/baselines/<run>/<isa class>.json``, one per class of int8 instructions, because int8
arithmetic (and so a prediction near the boundary) can differ between them. On a class without
one, (c) and (d) are a named *skipped* case (in the table and the JUnit file) that says how to
record it; ``require_baseline`` makes that a failure. Nothing is skipped silently.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from .accuracy import load_predictions, needed_correct
from .config import RunConfig
from .errors import MissingPrerequisite, UserError
from .paths import project_root
from .provenance import LIBRARIES, cpu_info, isa_class, package_versions
from .results import FP32_TORCH, AccuracyResult, EndpointResult, LatencyResult, ratio_summary, read_result

BASELINE_SCHEMA = 2
# Libraries whose kernels decide the predictions; a baseline records them.
# Examples named in a failure before "and N more".
NAMED_EXAMPLES = 10


@dataclass(frozen=True)
class RuleResult:
    rule: str
    system: str
    value: str
    limit: str
    passed: bool
    why: str
    # Not judged (a rule that needs what this machine lacks); it never counts as passed.
    skipped: bool = False

    @property
    def verdict(self) -> str:
        return "SKIP" if self.skipped else "PASS" if self.passed else "FAIL"


def baseline_path(cfg: RunConfig, override: str | None = None, isa: str | None = None) -> Path:
    return Path(override) if override else project_root() / "params" / "baselines" / cfg.run / f"{isa or isa_class()}.json"


def update_command(cfg: RunConfig, systems: list[str] | None = None) -> str:
    names = f" --systems {' '.join(systems)}" if systems else ""
    return f"sst2bench check --run {cfg.run} --update-baseline{names}"


def run_predictions(cfg: RunConfig) -> dict[str, dict]:
    """Every scored system of the run, local or remote: family, count and predictions by idx."""
    path = cfg.runs_dir / "accuracy.json"
    if not path.is_file():
        raise UserError(f"{path} is missing: run `make report RUN={cfg.run}` (or `sst2bench quantize --run {cfg.run}`) first")
    accuracy = read_result(path, AccuracyResult)
    if not accuracy.done:
        raise UserError(f"run {cfg.run!r} has no accuracy results: {accuracy.reason}")
    scored = dict(accuracy.systems)
    endpoint = read_result(cfg.runs_dir / "cloudflare.json", EndpointResult, missing_ok=True)
    if endpoint.done and endpoint.system is not None:
        scored[endpoint.system.system] = endpoint.system
    systems = {}
    for name, result in scored.items():
        records = load_predictions(cfg.runs_dir / "predictions" / result.predictions)
        systems[name] = {
            "family": result.family,
            "correct": result.correct,
            "n": result.n,
            "predicted": {r.idx: r.label for r in records},
            "gold": {r.idx: r.gold for r in records},
        }
    return systems


def relative_accuracy_rule(systems: dict, minimum: float) -> list[RuleResult]:
    """(a) int8 keeps ⌈minimum × fp32 correct⌉ examples; the rounding is printed."""
    rule = f"keeps ≥ {100 * minimum:g} % of fp32's correct count"
    fp32 = systems.get(FP32_TORCH)
    if fp32 is None:
        return [
            RuleResult(rule, "all", "no fp32", FP32_TORCH, False, f"no {FP32_TORCH} system in the results: the floor is relative to it")
        ]
    out = []
    for name, r in systems.items():
        if r["family"] != "int8":
            continue
        # fp32's count on the examples this system was scored on (a remote endpoint may score fewer).
        reference = sum(fp32["predicted"].get(i) == gold for i, gold in r["gold"].items())
        exact = minimum * reference
        needed = needed_correct(minimum, reference)
        passed = r["correct"] >= needed
        why = f"needs ⌈{minimum:g} × {reference} = {exact:.2f}⌉ = {needed}; has {r['correct']}" + (
            "" if passed else f", {needed - r['correct']} short"
        )
        out.append(RuleResult(rule, name, f"{r['correct']}/{r['n']}", f"≥ {needed}", passed, why))
    return out


def agreement_rule(systems: dict, minimum: float) -> list[RuleResult]:
    """(b) int8 predicts fp32's label on ≥ ``minimum`` of the examples both scored, in whole examples."""
    rule = f"agrees with fp32 on ≥ {100 * minimum:g} % of examples"
    fp32 = systems.get(FP32_TORCH)
    if fp32 is None:
        return []  # the floor rule already fails the run for want of fp32
    out = []
    for name, r in systems.items():
        if r["family"] != "int8":
            continue
        shared = [i for i in r["predicted"] if i in fp32["predicted"]]
        flips = sorted(i for i in shared if r["predicted"][i] != fp32["predicted"][i])
        needed = needed_correct(minimum, len(shared))
        agree = len(shared) - len(flips)
        passed = agree >= needed
        why = f"needs ⌈{minimum:g} × {len(shared)}⌉ = {needed} examples with fp32's label; has {agree} ({len(flips)} flips)"
        out.append(RuleResult(rule, name, f"{agree}/{len(shared)}", f"≥ {needed}", passed, why))
    return out


def _named(indices: list[int], sentences: dict[int, str]) -> str:
    shown = [f"#{i}" + (f" {sentences[i].strip()[:60]!r}" if i in sentences else "") for i in indices[:NAMED_EXAMPLES]]
    more = f" and {len(indices) - NAMED_EXAMPLES} more" if len(indices) > NAMED_EXAMPLES else ""
    return "; ".join(shown) + more


def churn_rule(cfg: RunConfig, systems: dict, baseline: dict, sentences: dict[int, str]) -> list[RuleResult]:
    """(c) and (d): per system, examples newly wrong (gross) within budget; systems match the baseline."""
    budget = cfg.check.max_newly_wrong
    rule = f"≤ {budget} examples newly wrong vs baseline"
    gold = {int(i): int(g) for i, g in zip(baseline["idx"], baseline["gold"])}
    out = []
    relabelled = sorted({i for r in systems.values() for i, g in r["gold"].items() if i in gold and gold[i] != g})
    if relabelled:
        out.append(
            RuleResult(
                "same labels as the baseline",
                "all",
                f"{len(relabelled)} differ",
                "0",
                False,
                f"the data's gold labels differ from the baseline's at {_named(relabelled, sentences)}: another data file? rewrite with `{update_command(cfg)}` if intended",
            )
        )
    for name, current in systems.items():
        base = baseline["systems"].get(name)
        if base is None:
            out.append(
                RuleResult(
                    "in the baseline",
                    name,
                    "missing",
                    "present",
                    False,
                    f"the run produces {name} but the baseline has no predictions for it; add them with `{update_command(cfg, [name])}`",
                )
            )
            continue
        before = {int(i): int(p) for i, p in zip(baseline["idx"], base["predicted"])}
        if set(before) != set(current["predicted"]):
            out.append(
                RuleResult(
                    rule,
                    name,
                    f"n={current['n']}",
                    f"n={len(before)}",
                    False,
                    f"scored on other examples than the baseline ({current['n']} vs {len(before)}); rewrite it with `{update_command(cfg)}` if that is intended",
                )
            )
            continue
        newly_wrong = sorted(i for i, p in current["predicted"].items() if p != gold[i] and before[i] == gold[i])
        newly_right = sorted(i for i, p in current["predicted"].items() if p == gold[i] and before[i] != gold[i])
        passed = len(newly_wrong) <= budget
        why = f"{current['correct']}/{current['n']} now, {base['correct']} in the baseline: net {len(newly_right) - len(newly_wrong):+d}, churn {len(newly_wrong) + len(newly_right)}"
        if newly_wrong:
            why += f"; newly wrong: {_named(newly_wrong, sentences)}"
        if newly_right:
            why += f"; newly right: {_named(newly_right, sentences)}"
        out.append(RuleResult(rule, name, f"{len(newly_wrong)} newly wrong", f"≤ {budget}", passed, why))
    for name in baseline["systems"]:
        if name not in systems:
            out.append(
                RuleResult(
                    "in the baseline",
                    name,
                    "not produced",
                    "produced",
                    False,
                    f"the baseline has {name} but this run did not produce it; if it was removed on purpose, rewrite the baseline with `{update_command(cfg)}`",
                )
            )
    return out


def speed_rule(cfg: RunConfig, systems: dict, minimum: float) -> list[RuleResult]:
    """(e) int8 speed-up over the faster fp32 ONNX Runtime baseline at batch 1, 1 thread: the low
    end of the per-round ratios must clear the bar; a system without one fails."""
    rule = f"int8 ≥ {minimum:g}x fp32 ONNX Runtime speed (low end of the rounds)"
    path = cfg.runs_dir / "latency.json"
    latency = read_result(path, LatencyResult, missing_ok=True)
    out = []
    for name, r in systems.items():
        if r["family"] != "int8":
            continue
        ratio = ratio_summary(latency, name, cfg.latency.baselines) if latency.done else None
        if ratio is None:
            out.append(
                RuleResult(
                    rule, name, "not measured", f"≥ {minimum:g}x", False, f"{path} has no batch-1 ratio for {name}: run the latency stage"
                )
            )
            continue
        out.append(
            RuleResult(
                rule,
                name,
                f"{ratio.median:.2f}x [{ratio.low:.2f}–{ratio.high:.2f}]",
                f"≥ {minimum:g}x",
                ratio.clears(minimum),
                f"per-round p50 ratios against {ratio.baseline} at batch 1, 1 thread, {ratio.rounds} rounds",
            )
        )
    return out


def eval_sentences(cfg: RunConfig) -> dict[int, str]:
    """The eval split's sentences by idx, to name examples; empty when the data is not here."""
    from .stages.common import eval_split, load_data

    try:
        data, _ = load_data(cfg, splits=(cfg.data.eval_split,))
    except MissingPrerequisite:
        return {}
    split = eval_split(cfg, data)
    return dict(zip(split["idx"], split["sentence"]))


def predictions_commit(cfg: RunConfig) -> str | None:
    """The commit of the code that scored the run (its accuracy result's provenance), ``-dirty``
    when that tree had uncommitted changes."""
    return read_result(cfg.runs_dir / "accuracy.json", AccuracyResult).provenance.get("git_commit")


def write_baseline(cfg: RunConfig, path: Path, only: list[str] | None = None, allow_dirty: bool = False) -> dict:
    """The run's predictions as the baseline of this CPU's ISA class; ``only`` merges just those systems.

    Refused when the predictions came from a tree with uncommitted changes (no commit reproduces
    them), unless ``allow_dirty``, which marks the file ``"dirty": true``."""
    systems = run_predictions(cfg)
    commit = predictions_commit(cfg)
    dirty = commit is None or commit.endswith("-dirty")
    if dirty and not allow_dirty:
        raise UserError(
            f"run {cfg.run!r} was scored by {commit or 'code outside a git checkout'}: a baseline must come from committed code. "
            f"Commit, re-score with `sst2bench report --runs {cfg.run} --quick --force` (a cached stage keeps the commit that "
            "made it), then write it; or pass --allow-dirty to write one marked dirty"
        )
    unknown = sorted(set(only or ()) - set(systems))
    if unknown:
        raise UserError(f"--systems {' '.join(unknown)}: not in this run's results ({', '.join(systems)})")
    cpu = cpu_info()
    idx = sorted(next(iter(systems.values()))["predicted"])
    gold = next(iter(systems.values()))["gold"]
    chosen = {name: systems[name] for name in (only or systems)}
    # Labels as one string of digits in idx order: compact, and a diff shows which examples moved.
    entries = {
        name: {"family": r["family"], "correct": r["correct"], "n": r["n"], "predicted": "".join(str(r["predicted"][i]) for i in idx)}
        for name, r in chosen.items()
    }
    if only:
        if not path.is_file():
            raise UserError(f"{path} does not exist yet: write the whole baseline first with `{update_command(cfg)}`")
        existing = json.loads(path.read_text())
        if existing["idx"] != idx:
            raise UserError(f"{path} was made on other examples; rewrite it whole with `{update_command(cfg)}`")
        entries = {**existing["systems"], **entries}
        # The systems kept from the existing file still come from the code that wrote it.
        dirty = dirty or bool(existing.get("dirty"))
        if existing.get("git_commit") != commit:
            commit = f"{commit} (systems {', '.join(sorted(only))}); {existing.get('git_commit')} (the rest)"
    baseline = {
        "schema": BASELINE_SCHEMA,
        "run": cfg.run,
        "isa_class": isa_class(cpu),
        "cpu": cpu,
        "runtime": package_versions(LIBRARIES),
        "git_commit": commit,
        "dirty": dirty,
        "split": cfg.data.eval_split,
        "idx": idx,
        "gold": "".join(str(gold[i]) for i in idx),
        "systems": entries,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, indent=1) + "\n")
    return baseline


def load_baseline(path: Path) -> dict:
    baseline = json.loads(path.read_text())
    if baseline.get("schema") != BASELINE_SCHEMA:
        raise UserError(
            f"{path} is a baseline of schema {baseline.get('schema')}, this gate reads schema {BASELINE_SCHEMA}: rewrite it with --update-baseline"
        )
    return baseline


def runtime_note(baseline: dict) -> str | None:
    """Which runtime libraries differ from the baseline's, as a line for the log (not a rule)."""
    now = package_versions(LIBRARIES)
    changed = [
        f"{name} {baseline['runtime'].get(name)} → {version}" for name, version in now.items() if baseline["runtime"].get(name) != version
    ]
    return f"runtime differs from the baseline's: {', '.join(changed)}" if changed else None


def run_check(cfg: RunConfig, baseline_file: str | None = None, require_baseline: bool = False) -> list[RuleResult]:
    systems = run_predictions(cfg)
    results = relative_accuracy_rule(systems, cfg.check.min_relative_accuracy)
    results += agreement_rule(systems, cfg.check.min_fp32_agreement)
    path = baseline_path(cfg, baseline_file)
    if path.is_file():
        results += churn_rule(cfg, systems, load_baseline(path), eval_sentences(cfg))
    elif baseline_file:
        raise UserError(f"baseline {path} does not exist")
    else:
        isa = isa_class()
        how = f"record it on such a machine from a clean tree with `{update_command(cfg)}` and commit it"
        results.append(
            RuleResult(
                "baseline for this ISA class",
                "all",
                f"no {isa} baseline",
                str(path),
                False,
                f"{path} does not exist (this CPU's int8 class is {isa}), so churn against a baseline is not judged; {how}"
                + ("" if require_baseline else "; --require-baseline makes this a failure"),
                skipped=not require_baseline,
            )
        )
    if cfg.check.min_speedup > 0:
        results += speed_rule(cfg, systems, cfg.check.min_speedup)
    return results


def format_table(results: list[RuleResult]) -> str:
    """Every rule's verdict, then a closing line that counts them (what CI logs read)."""
    import pandas as pd

    frame = pd.DataFrame([{"": r.verdict, **{k: v for k, v in asdict(r).items() if k not in ("passed", "skipped")}} for r in results])
    counts = {verdict: sum(r.verdict == verdict for r in results) for verdict in ("PASS", "FAIL", "SKIP")}
    table = frame.to_string(index=False, justify="left") if results else "no rules"
    return f"{table}\n{counts['PASS']} passed, {counts['FAIL']} failed" + (f", {counts['SKIP']} skipped" if counts["SKIP"] else "")


def gate_passed(results: list[RuleResult]) -> bool:
    """No rule failed (a skipped one is not a failure: ``require_baseline`` decides that)."""
    return not any(r.verdict == "FAIL" for r in results)


def write_junit(results: list[RuleResult], path: Path, run: str) -> None:
    """JUnit XML, one test case per rule and system, so CI systems show the gate."""
    suite = ET.Element(
        "testsuite",
        name=f"sst2bench-check-{run}",
        tests=str(len(results)),
        failures=str(sum(r.verdict == "FAIL" for r in results)),
        skipped=str(sum(r.skipped for r in results)),
    )
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"sst2bench.check.{run}", name=f"{r.rule} [{r.system}]")
        if r.verdict != "PASS":
            ET.SubElement(case, "skipped" if r.skipped else "failure", message=r.why).text = json.dumps(asdict(r))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
