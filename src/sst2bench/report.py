"""Tables and figures of a run's report, built from its JSON only (never from models or data)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .results import (
    FP32_TORCH,
    STAGE_RESULTS,
    AccuracyResult,
    EndpointResult,
    LatencyMeasurement,
    LatencyResult,
    LatencyStats,
    ModelResult,
    QuantizeResult,
    StageResult,
    SystemAccuracy,
    read_result,
)

# The attribute RunResults keeps each stage's result under.
STAGE_ATTRIBUTES = {"model": "model", "quantize": "quantize", "accuracy": "accuracy", "latency": "latency", "cloudflare": "endpoint"}


def family_color(family: str) -> str:
    """fp32 blue, int8 orange, in every figure."""
    return "tab:blue" if family == "fp32" else "tab:orange"


@dataclass
class RunResults:
    """A run's stage results, read through their schemas; the report's only input."""

    run: str
    model: ModelResult
    quantize: QuantizeResult
    accuracy: AccuracyResult
    latency: LatencyResult
    endpoint: EndpointResult

    @classmethod
    def load(cls, runs_dir: Path | str) -> RunResults:
        runs_dir = Path(runs_dir)
        return cls(
            runs_dir.name, *(read_result(runs_dir / f"{name}.json", schema, missing_ok=True) for name, schema in STAGE_RESULTS.items())
        )

    def stage(self, name: str) -> StageResult:
        return getattr(self, STAGE_ATTRIBUTES[name])

    @property
    def systems(self) -> dict[str, SystemAccuracy]:
        """Every scored system, local or remote, alike."""
        systems = dict(self.accuracy.systems) if self.accuracy.done else {}
        if self.endpoint.done and self.endpoint.system is not None and systems:
            systems[self.endpoint.system.system] = self.endpoint.system
        return systems

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

    def size_mib(self, system: str) -> float | None:
        if system in self.latency.size_mib:
            return self.latency.size_mib[system]
        if system in self.quantize.recipes:
            return self.quantize.recipes[system].size_mib
        return self.model.size_mib.get(system)


def headline_table(res: RunResults):
    """Every system: accuracy with count and interval, change vs fp32, size, latency and throughput.

    A remote endpoint's latency is a network round-trip, so it has its own column."""
    import pandas as pd

    batch1 = res.latency_at(1, threads=1)
    results = res.latency.results
    largest = max((r.batch_size for r in results), default=None)
    big = res.latency_at(largest, threads=max(r.threads for r in results)) if largest else {}
    rows = []
    for name, r in res.systems.items():
        vs, lat, remote, thr = r.vs_fp32, batch1.get(name), res.request_latency(name), big.get(name)
        rows.append(
            {
                "system": name,
                "accuracy": f"{r.correct}/{r.n} = {100 * r.accuracy:.2f} %",
                "95 % CI": f"{100 * r.accuracy_ci95[0]:.2f}–{100 * r.accuracy_ci95[1]:.2f}",
                "Δ vs fp32 (examples)": f"{vs.difference_examples:+d}" if vs else "baseline",
                "relative Δ %": round(100 * vs.relative_change, 2) if vs else 0.0,
                "McNemar p": round(vs.mcnemar_exact_p, 3) if vs else "",
                "size MiB": res.size_mib(name),
                "p50 ms (b1, 1 thr)": round(lat.p50_ms, 2) if lat else None,
                "p99 ms (b1, 1 thr)": round(lat.p99_ms, 2) if lat else None,
                "round-trip p50 ms (network)": round(remote.p50_ms, 1) if remote else None,
                f"samples/s (b{largest})": round(thr.samples_per_second, 1) if thr else None,
            }
        )
    return pd.DataFrame(rows).set_index("system").fillna("—") if rows else pd.DataFrame()


def published_comparison(res: RunResults, published_file: Path):
    """Intel's published numbers (read from a cited data file, units as published) beside this
    run's fp32 and most accurate int8, in the same units. Published counts are derived."""
    import pandas as pd
    import yaml

    published = yaml.safe_load(Path(published_file).read_text())
    n = published["evaluated_on"]["examples"]
    rows = [
        {
            "source": f"Intel, model card @ {published['source']['revision'][:7]}",
            "system": row["system"],
            "metric": row["metric"],
            "value": f"{row['value']:.4f}",
            "correct/n": f"{round(row['value'] * n)}/{n} (derived)" if row["metric"] == "eval-accuracy" else "not published",
            "size MB": row["size_mb"],
        }
        for row in published["rows"]
    ]
    int8 = {name: r for name, r in res.systems.items() if r.family == "int8"}
    picks = [(FP32_TORCH, res.systems.get(FP32_TORCH))] + ([max(int8.items(), key=lambda item: item[1].correct)] if int8 else [])
    for name, r in picks:
        if r is not None:
            size = res.size_mib(name)
            rows.append(
                {
                    "source": f"this run ({res.run})",
                    "system": name,
                    "metric": "accuracy",
                    "value": f"{r.accuracy:.4f}",
                    "correct/n": f"{r.correct}/{r.n}",
                    "size MB": round(size * 2**20 / 1e6) if size else "—",
                }
            )
    return pd.DataFrame(rows)


def figure_accuracy(res: RunResults, floor: float):
    """Accuracy with its interval per system; ``floor`` is the run's relative floor (check params)."""
    import matplotlib.pyplot as plt

    names = list(res.systems)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
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
    ax.set_xlabel("accuracy % on SST-2 validation (95 % bootstrap interval)")
    ax.set_title("Accuracy per system")
    fig.tight_layout()
    return fig


def figure_pareto(res: RunResults):
    """Accuracy against p50 latency at batch 1, 1 thread; the Pareto front joined."""
    import matplotlib.pyplot as plt

    lat = res.latency_at(1, threads=1)
    points = [(lat[n].p50_ms, 100 * r.accuracy, n, r.family) for n, r in res.systems.items() if n in lat]
    fig, ax = plt.subplots(figsize=(8, 5))
    front, best = [], -1.0
    for x, y, *_ in sorted(points):
        if y > best:
            front.append((x, y))
            best = y
    for x, y, name, family in points:
        ax.scatter(x, y, color=family_color(family), zorder=3)
        if (x, y) in front or family == "fp32":  # the others are in the headline table
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if front:
        ax.plot(*zip(*front), color="grey", ls="--", lw=1, label="Pareto front")
        ax.legend(fontsize=8)
    ax.set_xlabel("p50 latency, batch 1, 1 thread (ms)")
    ax.set_ylabel("accuracy %")
    ax.set_title("Accuracy against latency")
    fig.tight_layout()
    return fig


def figure_latency(res: RunResults):
    import matplotlib.pyplot as plt

    lat = res.latency_at(1, threads=1)
    names = sorted(lat, key=lambda n: lat[n].p50_ms)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    ax.boxplot([lat[n].durations_ms for n in names], vert=False, showfliers=True)
    ax.set_yticks(range(1, len(names) + 1), names)
    ax.set_xlabel("ms per call (batch 1, 1 thread, dynamic padding)")
    ax.set_title("Latency distribution per system")
    fig.tight_layout()
    return fig


def figure_size(res: RunResults):
    import matplotlib.pyplot as plt

    names = [n for n in res.systems if res.size_mib(n)]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    ax.barh(names, [res.size_mib(n) for n in names], color=[family_color(res.systems[n].family) for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("model file size (MiB)")
    ax.set_title("Size on disk")
    fig.tight_layout()
    return fig


def figure_confusion(res: RunResults):
    import matplotlib.pyplot as plt

    names = list(res.systems)
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        matrix = res.systems[name].confusion_matrix
        ax.imshow(matrix, cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, matrix[i][j], ha="center", va="center")
        ax.set_xticks([0, 1], ["neg", "pos"])
        ax.set_yticks([0, 1], ["neg", "pos"])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("gold", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def disagreements_table(res: RunResults, system: str):
    """Examples where ``system`` and fp32 PyTorch predict different labels, with both scores."""
    import pandas as pd

    found = res.systems.get(system)
    rows = found.vs_fp32.disagreements if found and found.vs_fp32 else []
    names = {0: "negative", 1: "positive"}
    return pd.DataFrame(
        [
            {
                "idx": d.idx,
                "sentence": d.sentence,
                "gold": names[d.gold],
                "fp32": f"{names[d.baseline_label]} ({d.baseline_score:.3f})",
                system: f"{names[d.candidate_label]} ({d.candidate_score:.3f})",
                "right": "int8" if d.candidate_label == d.gold else "fp32",
            }
            for d in rows
        ]
    )


def provenance_table(res: RunResults):
    import pandas as pd

    source = next((res.stage(s).provenance for s in ("latency", "accuracy", "model") if res.stage(s).provenance), None)
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
        "timestamp": source["timestamp"],
    }
    return pd.DataFrame({"value": rows})


def cloudflare_summary(res: RunResults) -> str:
    """Markdown: what the endpoint scored, how fast, what it cost, and when the replies were collected."""
    import datetime as dt

    remote = res.endpoint
    if not remote.done:
        return f"**Not measured ({remote.status}).** {remote.reason}"
    when = [
        dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") for moment in (remote.collected_from, remote.collected_to)
    ]
    system, latency, cost = remote.system, remote.latency_per_request, remote.cost_actual or {}
    return (
        f"Endpoint: {remote.endpoint} (`{remote.model}`). "
        f"Accuracy {system.correct}/{system.n} = {100 * system.accuracy:.2f} %; "
        f"per request p50 {latency.p50_ms:.0f} ms, p99 {latency.p99_ms:.0f} ms (network included, "
        f"{remote.retries} retries excluded). Replies collected {when[0]} – {when[1]}; "
        f"this run sent {remote.usage['sent']} requests ({cost.get('input_tokens', 0)} tokens, ${cost.get('dollars', 0):.4f}) "
        f"and took {remote.usage['from_cache']} from the cache."
    )


def stage_status(res: RunResults):
    import pandas as pd

    return pd.DataFrame({s: {"status": res.stage(s).status, "note": res.stage(s).reason} for s in STAGE_RESULTS}).T


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
                "correct/n": f"{r.correct}/{r.n}",
                "accuracy %": f"{100 * r.accuracy:.2f}",
                "95 % CI %": f"{100 * r.accuracy_ci95[0]:.2f}–{100 * r.accuracy_ci95[1]:.2f}",
                "Δ vs fp32 (examples)": f"{vs.difference_examples:+d}" if vs else "baseline",
                "McNemar p": f"{vs.mcnemar_exact_p:.3f}" if vs else "",
                "agreement with fp32 %": f"{100 * vs.agreement:.1f}" if vs else "",
            }
        )
    return pd.DataFrame(rows).set_index("system")
