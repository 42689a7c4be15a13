"""The ``sst2bench`` command: every stage a notebook runs can also be run from a shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import UserError


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    """Defaults are the runs' evaluation protocol (``InferenceConfig``), so one model gets one count."""
    from .systems import PADDINGS, InferenceConfig

    default = InferenceConfig()
    parser.add_argument(
        "--batch-size",
        type=int,
        default=default.batch_size,
        help=f"examples per forward pass (default {default.batch_size}, as every run scores)",
    )
    parser.add_argument(
        "--max-length", type=int, default=default.max_length, help=f"truncate to this many tokens (default {default.max_length})"
    )
    parser.add_argument(
        "--padding",
        choices=PADDINGS,
        default=default.padding,
        help=f"pad to the batch's longest or to --max-length (default {default.padding})",
    )
    parser.add_argument("--threads", type=int, default=default.threads, help=f"intra-op threads (default {default.threads})")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="a run in params/ (standin, ci, distilbert) or a YAML path")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder of GLUE TSV files (default: $SST2_DATA_DIR, else data/raw/sst2)")
    from .data import DATA_SOURCES

    parser.add_argument("--source", choices=DATA_SOURCES, default="auto", help="where SST-2 comes from (default auto)")


def cmd_evaluate(args) -> int:
    import shutil
    import tempfile

    from .evaluation import accuracy_table, evaluate
    from .paths import project_root, user_path
    from .systems import InferenceConfig, load_system

    config = InferenceConfig(args.batch_size, args.max_length, args.padding, args.threads)
    params = {"model": args.model, "split": args.split, "limit": args.limit, **vars(config)}
    if args.data:
        from .tables import is_file_source, load_labelled, parse_label_map

        if args.data_dir:
            raise UserError("--data-dir is SST-2's folder; with --data, name the file or Hub dataset only")
        is_file = is_file_source(args.data)
        data = str(user_path(args.data)) if is_file else args.data  # a Hub id stays as typed
        label_map = parse_label_map(args.label_map)
        split = load_labelled(
            data,
            text_column=args.text_column,
            label_column=args.label_column,
            label_map=label_map,
            config=args.data_config,
            split=args.split,
            revision=args.data_revision,
        )
        params.update(data=data, text_column=args.text_column, label_column=args.label_column, label_map=label_map)
        params.update(data_config=args.data_config, data_revision=args.data_revision)
        if is_file:
            from .data import sha256_of

            params["data_sha256"] = sha256_of(Path(data))
        slug = Path(data).stem if is_file else "-".join(filter(None, (data.replace("/", "__"), args.data_config, args.split)))
    else:
        from .data import load_sst2

        unset = {"text_column": "sentence", "label_column": "label"}  # their defaults; the others default to None
        for option in ("text_column", "label_column", "label_map", "data_config", "data_revision"):
            if getattr(args, option) != unset.get(option):
                raise UserError(f"--{option.replace('_', '-')} goes with --data")
        args.split = params["split"] = args.split or "validation"
        if args.split not in ("train", "validation"):
            raise UserError(f"SST-2 has no labelled split {args.split!r}; choose train or validation")
        data, _ = load_sst2(args.source, args.data_dir, splits=(args.split,))
        split = data[args.split]
    if args.limit:
        split = split.select(range(min(args.limit, len(split))))
    system = load_system(args.model, config, name=args.name)
    default_dir = project_root() / "runs" / "evaluate" / (f"{system.name}-on-{slug}" if args.data else system.name)
    out_dir = Path(args.output or default_dir)
    # Scored into a scratch folder first: the output folder gets both files or nothing.
    with tempfile.TemporaryDirectory(prefix="sst2bench-evaluate-") as scratch:
        result = evaluate(system, split, scratch, params=params, progress=not args.quiet)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in (result["predictions"], "accuracy.json"):
            shutil.move(str(Path(scratch) / name), str(out_dir / name))
    print(accuracy_table([result]).to_string(index=False))
    print(f"wrote {out_dir / result['predictions']} and {out_dir / 'accuracy.json'}")
    return 0


def cmd_build_standin(args) -> int:
    from .data import TuningConfig, load_sst2, make_tuning_split
    from .paths import project_root
    from .standin import FinetuneConfig, build_standin

    config = FinetuneConfig(train_examples=args.train_examples, epochs=args.epochs, learning_rate=args.learning_rate, threads=args.threads)
    data, files = load_sst2("tsv" if args.source == "auto" else args.source, args.data_dir, splits=("train", "validation"))
    output = args.output or project_root() / "models" / "standin" / "fp32"
    # The fine-tune leaves out the default tuning split's sentences and their phrases, as the runs do.
    splits = make_tuning_split(data["train"], data["validation"], TuningConfig())
    record = build_standin(output, splits, data["validation"], files, config, progress=not args.quiet)
    accuracy = record["validation"]
    print(
        f"stand-in in {output}: validation {accuracy['correct']}/{accuracy['n']} = {100 * accuracy['accuracy']:.2f} %, "
        f"fine-tune {record['training']['steps']} steps in {record['training']['seconds'] / 60:.1f} min"
    )
    return 0


def cmd_quantize(args) -> int:
    from .config import load_run
    from .quantization import preset
    from .stages.accuracy import recipe_table, stage_accuracy
    from .stages.model import stage_model
    from .stages.quantize import stage_quantize

    cfg = load_run(args.run)
    recipes = [preset(name, **cfg.quantize.overrides.get(name, {})) for name in args.recipes] if args.recipes else None
    progress = not args.quiet
    model = stage_model(cfg, progress)
    if not model.done:
        raise UserError(f"run {cfg.run!r} cannot quantize: {model.reason}")
    stage_quantize(cfg, recipes, progress)
    stage_accuracy(cfg, progress)
    print(recipe_table(cfg).to_string(index=False))
    print(f"wrote {cfg.runs_dir / 'quantize.json'} and {cfg.runs_dir / 'accuracy.json'}")
    return 0


def cmd_bench(args) -> int:
    from .config import load_run
    from .stages.latency import stage_latency

    cfg = load_run(args.run)
    result = stage_latency(cfg, quick=args.quick, progress=not args.quiet)
    if not result.done:
        raise UserError(f"run {cfg.run!r} cannot be benchmarked: {result.reason}")
    print(result.table().to_string(index=False))
    for baseline in ("fp32_ort", "fp32_torch"):
        ratios = getattr(result, f"speedup_vs_{baseline}")
        if ratios:
            best = max((n for n in ratios if not n.startswith("fp32")), key=ratios.get, default=None)
            if best:
                print(f"batch 1, 1 thread, dynamic padding: {best} is {ratios[best]:.2f}x faster than {baseline.replace('_', '-')} at p50")
    print(f"wrote {cfg.runs_dir / 'latency.json'}")
    return 0


def cmd_report(args) -> int:
    from .pipeline import DEFAULT_RUNS, report
    from .report import write_checkpoints, write_comparison

    if args.compare and args.checkpoints:
        raise UserError(
            "--compare (one model across machines) and --checkpoints (several models on one machine) are separate pages: give one"
        )
    if args.checkpoints:
        if args.runs or args.force or args.quick or args.allow_different_models:
            raise UserError(
                "--checkpoints reads finished runs only: give run folders, without --runs, --force, --quick or --allow-different-models"
            )
        print(f"checkpoints: {write_checkpoints([Path(d) for d in args.checkpoints], args.output)}")
        return 0
    if args.compare:
        if args.runs or args.force or args.quick:
            raise UserError("--compare reads finished runs only: give run folders, without --runs, --force or --quick")
        path = write_comparison([Path(d) for d in args.compare], args.output, allow_different_models=args.allow_different_models)
        print(f"comparison: {path}")
        return 0
    if args.output or args.allow_different_models:
        raise UserError(
            "--output goes with --compare or --checkpoints, --allow-different-models with --compare (run reports go to reports/<run>/)"
        )
    report(args.runs or DEFAULT_RUNS, force=args.force, quick=args.quick)
    return 0


def cmd_export(args) -> int:
    from .bundle import export_bundle
    from .config import load_run

    folder, manifest = export_bundle(load_run(args.run), args.system, args.output)
    counts = ", ".join(f"{name} {c.correct}/{c.n}" for name, c in manifest.accuracy.items())
    print(f"exported {manifest.system}{' (the recommendation)' if manifest.recommended else ''} to {folder}: {counts}")
    print(f"serve it: sst2bench serve --model {folder}")
    return 0


def cmd_check(args) -> int:
    from .check import (
        baseline_path,
        format_table,
        gate_passed,
        isa_class,
        load_baseline,
        run_check,
        runtime_note,
        write_baseline,
        write_junit,
    )
    from .config import load_run
    from .provenance import cpu_info

    cfg = load_run(args.run)
    if args.update_baseline:
        path = baseline_path(cfg, args.baseline)
        baseline = write_baseline(cfg, path, only=args.systems, allow_dirty=args.allow_dirty)
        marked = " MARKED DIRTY (scored by uncommitted code)" if baseline["dirty"] else ""
        print(f"wrote baseline {path} ({baseline['isa_class']}, {len(baseline['systems'])} systems){marked}; commit it to make it the gate")
        return 0
    if args.systems or args.allow_dirty:
        raise UserError("--systems and --allow-dirty go with --update-baseline")
    path = baseline_path(cfg, args.baseline)
    print(f"run {cfg.run} on {cpu_info()['model']}, int8 class {isa_class()}; baseline {path}")
    if path.is_file():
        baseline = load_baseline(path)
        if note := runtime_note(baseline):
            print(note)
        if baseline.get("dirty", str(baseline.get("git_commit")).endswith("-dirty")):
            print(f"note: this baseline was written from uncommitted code ({baseline.get('git_commit')}); no commit reproduces it exactly")
    results = run_check(cfg, args.baseline, require_baseline=args.require_baseline)
    junit = Path(args.junit or cfg.runs_dir / "check-junit.xml")
    write_junit(results, junit, cfg.run)
    print(f"JUnit XML: {junit}")
    print(format_table(results))  # its last line counts the rules passed and failed
    return 0 if gate_passed(results) else 1


def cmd_cloudflare(args) -> int:
    from .config import load_run
    from .stages.endpoint import stage_endpoint

    cfg = load_run(args.run)
    result = stage_endpoint(cfg, quick=args.quick, refresh=args.refresh, progress=not args.quiet)
    estimate = result.cost_estimate
    if estimate:
        print(
            f"estimate before sending: {estimate['requests']} requests, {estimate['input_tokens']} tokens, "
            f"${estimate['dollars']:.4f}, {estimate['neurons']:.0f} neurons ({100 * estimate['share_of_daily_free_neurons']:.1f} % of a free day)"
        )
    if not result.done:
        print(f"Cloudflare {result.status}: {result.reason}")
        return 0 if result.status == "skipped" else 1
    system, usage = result.system, result.usage
    print(
        f"{result.endpoint}: {system.correct}/{system.n} = {100 * system.accuracy:.2f} %, "
        f"p50 {result.latency_per_request.p50_ms:.0f} ms per request; sent {usage['sent']}, from cache {usage['from_cache']}, retries {usage['retries_this_run']}"
    )
    print(f"wrote {cfg.runs_dir / 'cloudflare.json'}")
    return 0


def cmd_serve(args) -> int:
    from .cloudflare.credentials import setting
    from .cloudflare.serve import make_server
    from .systems import InferenceConfig, load_system

    token = setting("CLOUDFLARE_API_TOKEN")
    if not token:
        raise UserError("set CLOUDFLARE_API_TOKEN (environment or .env) to the bearer token clients must send")
    system = load_system(args.model, InferenceConfig(batch_size=1, threads=args.threads))
    server = make_server(system, token, args.host, args.port, args.model_name)
    host, port = server.server_address[:2]
    print(f"serving {args.model} as {args.model_name} at http://{host}:{port}/client/v4/accounts/<ACCOUNT_ID>/ai/run/{args.model_name}")
    print(f"point clients at it with CLOUDFLARE_BASE_URL=http://{host}:{port}/client/v4 (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .standin import FinetuneConfig

    parser = argparse.ArgumentParser(prog="sst2bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser("evaluate", help="accuracy of one model on an SST-2 split or any labelled table")
    evaluate.add_argument("--model", required=True, help="a local model folder (PyTorch or ONNX) or a Hub model id")
    evaluate.add_argument(
        "--split",
        help="SST-2: train or validation (default validation); with a Hub --data: its split "
        "(default the first of test, validation, train it has); not for a --data file",
    )
    evaluate.add_argument("--limit", type=int, default=0, help="score only the first N examples (0 = all)")
    evaluate.add_argument("--name", help="system name in tables and file names (default: the folder name)")
    evaluate.add_argument(
        "--output", help="folder for predictions and accuracy.json (default runs/evaluate/NAME, with --data runs/evaluate/NAME-on-DATA)"
    )
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_inference_options(evaluate)
    _add_data_options(evaluate)
    labelled = evaluate.add_argument_group("any labelled data (instead of SST-2)")
    labelled.add_argument(
        "--data",
        metavar="PATH_OR_HUB_ID",
        help="a .csv, .tsv (read with quoting off, as GLUE's), .jsonl or .parquet file, or a Hub dataset id",
    )
    labelled.add_argument("--text-column", default="sentence", help="column with the text (default sentence)")
    labelled.add_argument("--label-column", default="label", help="column with the label (default label)")
    labelled.add_argument(
        "--label-map",
        nargs="+",
        metavar="VALUE=LABEL",
        help="raw label to NEGATIVE or POSITIVE, e.g. 1=NEGATIVE 2=NEGATIVE 4=POSITIVE 5=POSITIVE, or one JSON object; "
        "without it the labels must be 0 (negative) or 1 (positive)",
    )
    labelled.add_argument("--data-config", help="a Hub dataset's configuration (subset)")
    labelled.add_argument("--data-revision", help="a Hub dataset's revision: a commit, branch or tag (default main)")
    evaluate.set_defaults(func=cmd_evaluate)

    standin = commands.add_parser("build-standin", help="build the offline stand-in model (convert + fine-tune)")
    finetune = FinetuneConfig()  # the defaults are the stand-in run's schedule
    standin.add_argument("--output", help="where the model goes (default models/standin/fp32 below the project root)")
    standin.add_argument("--train-examples", type=int, default=finetune.train_examples, help="fine-tune on N train examples (0 = all)")
    standin.add_argument("--epochs", type=float, default=finetune.epochs, help=f"(default {finetune.epochs:g})")
    standin.add_argument("--learning-rate", type=float, default=finetune.learning_rate, help=f"(default {finetune.learning_rate:g})")
    standin.add_argument("--threads", type=int, default=finetune.threads, help=f"(default {finetune.threads})")
    standin.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_options(standin)
    standin.set_defaults(func=cmd_build_standin)
    quantize = commands.add_parser("quantize", help="quantize a run's fp32 model with several recipes and score them")
    _add_run_options(quantize)
    quantize.add_argument("--recipes", nargs="+", help="recipe presets (default: the run's list)")
    quantize.set_defaults(func=cmd_quantize)

    bench = commands.add_parser("bench", help="latency, throughput and memory of every system of a run")
    _add_run_options(bench)
    bench.add_argument("--quick", action="store_true", help="batch 1, 1 thread, a few calls: under a minute")
    bench.set_defaults(func=cmd_bench)

    report = commands.add_parser("report", help="run the stage notebooks (cached) and build the HTML reports")
    report.add_argument("--runs", nargs="+", help="runs to report (default: distilbert standin)")
    report.add_argument("--force", action="store_true", help="rerun every stage even when nothing changed")
    report.add_argument("--quick", action="store_true", help="short latency settings")
    report.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN_DIR",
        help="instead: merge these run folders (runs/<run>, each measured on its own machine) into one latency comparison "
        "keyed by CPU and ISA, with each machine's accuracy counts and fp32 weights sha256 (reports/compare/index.html); "
        "runs of different fp32 models are refused",
    )
    report.add_argument(
        "--checkpoints",
        nargs="+",
        metavar="RUN_DIR",
        help="instead: the int8 deltas of runs that differ in their fp32 checkpoint (e.g. runs/standin runs/standin-seed2, one "
        "machine), each system against its own run's fp32 and the spread across checkpoints (reports/checkpoints/index.html)",
    )
    report.add_argument(
        "--output",
        help="with --compare or --checkpoints: the HTML file to write (default reports/compare/ or reports/checkpoints/index.html)",
    )
    report.add_argument(
        "--allow-different-models",
        action="store_true",
        help="with --compare: render runs whose fp32 weights differ (or cannot be checked), on a page titled so",
    )
    report.set_defaults(func=cmd_report)

    export = commands.add_parser("export", help="write a run's system (default: the recommendation) as a folder ready to ship")
    export.add_argument("--run", required=True, help="a run in params/ or a YAML path")
    export.add_argument("--system", help="the system to export (default: the report's recommendation)")
    export.add_argument("--output", help="the folder to write (default models/RUN/export/SYSTEM); must not exist or be empty")
    export.set_defaults(func=cmd_export)

    check = commands.add_parser("check", help="the accuracy gate: a run's results against its baseline and rules")
    check.add_argument("--run", required=True, help="a run in params/ or a YAML path")
    check.add_argument("--baseline", help="baseline JSON (default params/baselines/RUN/ISA_CLASS.json, this CPU's int8 class)")
    check.add_argument("--junit", help="where to write JUnit XML (default runs/RUN/check-junit.xml)")
    check.add_argument(
        "--update-baseline", action="store_true", help="write the current results as the new baseline of this CPU's ISA class"
    )
    check.add_argument("--systems", nargs="+", help="with --update-baseline: add or replace only these systems")
    check.add_argument(
        "--allow-dirty", action="store_true", help="with --update-baseline: write it even from uncommitted code (the file says so)"
    )
    check.add_argument(
        "--require-baseline", action="store_true", help="fail, instead of skipping the churn rules, when this CPU class has no baseline"
    )
    check.set_defaults(func=cmd_check)

    cloudflare = commands.add_parser("cloudflare", help="classify the eval split with Cloudflare Workers AI (cached replies)")
    _add_run_options(cloudflare)
    cloudflare.add_argument("--refresh", action="store_true", help="ask again even for cached sentences")
    cloudflare.add_argument("--quick", action="store_true", help="only the run's quick.endpoint_examples sentences")
    cloudflare.set_defaults(func=cmd_cloudflare)

    serve = commands.add_parser("serve", help="serve a local model with the Cloudflare Workers AI API")
    serve.add_argument("--model", required=True, help="a local model folder (PyTorch or ONNX)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument("--threads", type=int, default=1)
    serve.add_argument("--model-name", default="@cf/huggingface/distilbert-sst-2-int8", help="the model name in the URL path")
    serve.set_defaults(func=cmd_serve)
    return parser


# Options that name a file or folder the user typed; resolved against their directory at start.
PATH_OPTIONS = ("data_dir", "output", "baseline", "junit")
# Options that are lists of typed paths.
PATH_LIST_OPTIONS = ("compare",)


def anchor_arguments(args) -> None:
    """Resolve typed paths (and ``SST2_DATA_DIR``) once, before anything changes directory."""
    from .paths import anchor_user_paths, user_path

    anchor_user_paths()
    for name in PATH_OPTIONS:
        if getattr(args, name, None):
            setattr(args, name, str(user_path(getattr(args, name))))
    for name in PATH_LIST_OPTIONS:
        if getattr(args, name, None):
            setattr(args, name, [str(user_path(value)) for value in getattr(args, name)])
    model = getattr(args, "model", None)
    if model and Path(model).expanduser().exists():  # a local folder; otherwise a Hub id
        args.model = str(user_path(model))
    run = getattr(args, "run", None)
    if run and Path(run).suffix in (".yaml", ".yml"):
        args.run = str(user_path(run))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    anchor_arguments(args)
    try:
        return args.func(args)
    except UserError as error:
        print(f"sst2bench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sst2bench: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
