"""The papermill pipeline: stage notebooks run in order, cached by their inputs, then the report.

A stage reruns only when something it depends on changed: its notebook, the package's code, the
params sections it reads, or the JSON of the stages before it. Executed notebooks are kept under
``runs/<run>/notebooks/`` and become the report's appendix.
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .cache import digest
from .config import RunConfig, load_run
from .errors import UserError
from .paths import anchor_user_paths, project_root
from .report import TIMINGS_FILE
from .results import UNFINISHED

KERNEL = "sst2bench"
DEFAULT_RUNS = ("distilbert", "standin")


@dataclass(frozen=True)
class Stage:
    name: str
    notebook: str
    params_sections: tuple[str, ...]
    upstream: tuple[str, ...]
    # Project files the stage reads besides params and results (their content is in its key).
    files: tuple[str, ...] = ()


STAGES = (
    Stage("model", "10-model", ("model", "data", "inference"), ()),
    Stage("quantize", "20-quantize", ("quantize", "data", "inference", "studies"), ("model",)),
    Stage("accuracy", "30-accuracy", ("inference", "reference", "data", "evaluation_sets"), ("model", "quantize")),
    Stage("latency", "40-latency", ("latency", "quick", "reference", "data"), ("model", "quantize")),
    Stage(
        "cloudflare",
        "50-cloudflare",
        ("cloudflare", "data", "quick"),
        ("model", "accuracy"),
        ("params/published/cloudflare-workers-ai-pricing.yaml",),
    ),
    # Last before the report: the final split, once every choice is made (it reads no other stage's choice).
    Stage("final", "80-final", ("final_test", "inference", "check"), ("model", "quantize", "accuracy")),
    Stage(
        "report",
        "90-report",
        ("check",),
        ("model", "quantize", "accuracy", "latency", "cloudflare", "final"),
        ("params/published/intel-distilbert-sst2-int8.yaml",),
    ),
)


def repo_root(start: Path | None = None) -> Path:
    """The project root, which must hold the stage notebooks for the pipeline to run."""
    root = project_root(start)
    if not (root / "notebooks").is_dir():
        raise UserError(f"not inside an sst2bench checkout (no params/ and notebooks/ at or above {(start or Path.cwd()).resolve()})")
    return root


def notebook_code(path: Path) -> str:
    """The code cells of the notebook papermill executes (not its paired script, not its outputs)."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    return "\n# ---\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def notebook_modules(code: str) -> list[str]:
    """The package modules a notebook imports: the code its stage runs."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sst2bench":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "sst2bench")
    return sorted(found)


# Parts of a result that say how it was made this time (when, by which commit, from the cache or
# not), not what it is: a later stage does not depend on them.
CIRCUMSTANCES = ("provenance", "cache")


def _without_circumstances(value):
    if isinstance(value, dict):
        return {k: _without_circumstances(v) for k, v in value.items() if k not in CIRCUMSTANCES}
    if isinstance(value, list):
        return [_without_circumstances(v) for v in value]
    return value


def result_content(path: Path) -> str | None:
    """What a later stage reads from an earlier result, as a hash."""
    if not path.is_file():
        return None
    return digest(json.dumps(_without_circumstances(json.loads(path.read_text())), sort_keys=True).encode())


def prerequisites(stage: Stage, cfg: RunConfig) -> dict:
    """What decides whether a stage can run at all, so a skipped stage reruns once it can."""
    from .data import default_data_dir
    from .hub import hub_reachable

    found = {}
    if stage.name == "model":
        found["data_folder"] = (default_data_dir() / "validation.tsv").is_file()
        if cfg.model.kind == "hub":
            found["hub"] = hub_reachable()
    if stage.name == "accuracy":  # the content of the user's evaluation files (None: not there)
        from .cache import content_hash
        from .tables import is_file_source

        files = {s.name: project_root() / s.source for s in cfg.evaluation_sets if is_file_source(s.source)}
        found["evaluation_sets"] = {name: content_hash(path) if path.is_file() else None for name, path in files.items()}
    if stage.name in ("accuracy", "latency") and cfg.reference is not None:  # both measure the reference
        found["hub"] = hub_reachable()
    if stage.name == "cloudflare":
        from .cloudflare.credentials import NAMES, setting

        found["credentials"] = {name: bool(setting(name)) for name in NAMES}
        found["base_url"] = setting("CLOUDFLARE_BASE_URL")
    return found


def stage_key(stage: Stage, cfg: RunConfig, root: Path) -> str:
    """Everything a stage's result depends on: the executed notebook's code, the source of the
    package modules it imports (their import closure), the params sections it reads, the content
    of earlier results, and whether its prerequisites are there."""
    from .cache import code_hash, library_versions

    code = notebook_code(root / "notebooks" / f"{stage.notebook}.ipynb")
    params = cfg.to_dict()
    parts = {
        "prerequisites": prerequisites(stage, cfg),
        "notebook": digest(code.encode()),
        "code": code_hash(*notebook_modules(code)),
        "libraries": library_versions(),
        "params": {section: params.get(section) for section in stage.params_sections},
        "run": cfg.run,
        "data_dir": os.environ.get("SST2_DATA_DIR", ""),
        "upstream": {name: result_content(cfg.runs_dir / f"{name}.json") for name in stage.upstream},
        "files": {name: digest((root / name).read_bytes()) for name in stage.files},
    }
    return digest(json.dumps(parts, sort_keys=True, default=str).encode())


def execute_notebook(notebook: Path, output: Path, parameters: dict, cwd: Path) -> None:
    """Execute with papermill, streaming the kernel's stderr (the stages' tqdm bars: fine-tune steps
    with loss and ETA, recipes, INC trials, latency settings, requests) to this terminal as it comes."""
    import sys

    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(notebook), str(output), parameters=parameters, kernel_name=KERNEL, cwd=str(cwd), progress_bar=False, stderr_file=sys.stderr
    )


def run_stages(run: str, force: bool = False, quick: bool = False, echo=print) -> dict:
    """Run every stage of ``run`` that is out of date; return each stage's status and seconds."""
    anchor_user_paths()
    root = repo_root()
    cfg = load_run(run)
    cache_dir = cfg.runs_dir / ".cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    timings_file = cfg.runs_dir / TIMINGS_FILE
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    summary = {}
    for stage in STAGES:
        key = stage_key(stage, cfg, root) + ("-quick" if quick and "quick" in stage.params_sections else "")
        key_file = cache_dir / f"{stage.name}.key"
        output_json = cfg.runs_dir / f"{stage.name}.json"
        executed = cfg.runs_dir / "notebooks" / f"{stage.notebook}.ipynb"
        started = time.perf_counter()
        if not force and key_file.is_file() and key_file.read_text() == key and executed.is_file():
            status = "cached"
        else:
            echo(f"[{run}] {stage.notebook:<14} running")
            try:
                execute_notebook(root / "notebooks" / f"{stage.notebook}.ipynb", executed, {"run": run, "quick": quick}, root)
            except Exception as error:  # papermill wraps the cell's exception; keep the notebook for reading
                raise UserError(
                    f"run {run!r}, stage {stage.name!r} failed: {str(error).strip().splitlines()[-1]} (see {executed})"
                ) from error
            status = json.loads(output_json.read_text()).get("status", "done") if output_json.is_file() else "done"
            if status in UNFINISHED:
                key_file.unlink(missing_ok=True)  # never a cache hit: the next run resumes it
            else:
                key_file.write_text(key)
        seconds = time.perf_counter() - started
        summary[stage.name] = {"status": status, "seconds": round(seconds, 1)}
        timings[stage.name] = {**timings.get(stage.name, {}), **summary[stage.name]}
        if status != "cached":
            timings[stage.name].update(executed_seconds=round(seconds, 1), executed_at=time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
        timings_file.write_text(json.dumps(timings, indent=2))  # before the next stage: the report shows the ones before it
        echo(f"[{run}] {stage.notebook:<14} {status:<8} {seconds:7.1f} s")
        if stage.name == "model" and json.loads(output_json.read_text()).get("status") == "skipped":
            break  # nothing downstream can run without the fp32 model
    return summary


def build_report(run: str) -> Path:
    """HTML of the executed report notebook (no code) plus each stage notebook as an appendix."""
    from nbconvert import HTMLExporter

    cfg = load_run(run)
    report_dir = project_root() / "reports" / run
    report_dir.mkdir(parents=True, exist_ok=True)
    executed = cfg.runs_dir / "notebooks"
    exporter = HTMLExporter()
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_filename(str(executed / "90-report.ipynb"))
    (report_dir / "index.html").write_text(body)
    appendix = report_dir / "appendix"
    appendix.mkdir(exist_ok=True)
    full = HTMLExporter()
    for stage in STAGES[:-1]:
        notebook = executed / f"{stage.notebook}.ipynb"
        if notebook.is_file():
            (appendix / f"{stage.notebook}.html").write_text(full.from_filename(str(notebook))[0])
    return report_dir / "index.html"


def write_index(statuses: dict[str, dict]) -> Path:
    """``reports/index.html``: every run with its status and a link, or why it was skipped."""
    rows = []
    for run, info in statuses.items():
        link = f'<a href="{run}/index.html">{run}</a>' if info.get("report") else html.escape(run)
        rows.append(f"<tr><td>{link}</td><td>{html.escape(info['status'])}</td><td>{html.escape(info.get('reason', ''))}</td></tr>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>sst2bench reports</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;border-bottom:1px solid #ddd;text-align:left}</style>"
        "</head><body><h1>sst2bench reports</h1><table><tr><th>run</th><th>status</th><th>note</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    path = project_root() / "reports" / "index.html"
    path.parent.mkdir(exist_ok=True)
    path.write_text(page)
    return path


def report(runs=DEFAULT_RUNS, force: bool = False, quick: bool = False, echo=print) -> dict:
    """Run each run's stages and build its report; a run whose prerequisites are missing is skipped with why."""
    anchor_user_paths()
    repo_root()  # fail early outside a checkout
    statuses = {}
    for run in runs:
        summary = run_stages(run, force=force, quick=quick, echo=echo)
        model = json.loads((load_run(run).runs_dir / "model.json").read_text())
        if model["status"] == "skipped":
            statuses[run] = {"status": "skipped", "reason": model["reason"]}
            echo(f"[{run}] skipped: {model['reason']}")
            continue
        path = build_report(run)
        statuses[run] = {"status": "done", "report": str(path), "seconds": sum(s["seconds"] for s in summary.values())}
        echo(f"[{run}] report: {path}")
    index = write_index(statuses)
    echo(f"index: {index}")
    return statuses
