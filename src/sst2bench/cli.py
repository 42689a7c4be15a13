"""The ``sst2bench`` command: every stage a notebook runs can also be run from a shell."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import UserError


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=32, help="examples per forward pass (default 32)")
    parser.add_argument("--max-length", type=int, default=128, help="truncate to this many tokens (default 128)")
    parser.add_argument("--padding", choices=["dynamic", "max_length"], default="dynamic", help="pad to the batch's longest or to --max-length")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder of GLUE TSV files (default: $SST2_DATA_DIR, else data/raw/sst2)")
    parser.add_argument("--source", choices=["auto", "tsv", "hub"], default="auto", help="where SST-2 comes from (default auto)")


def cmd_evaluate(args) -> int:
    from .data import load_sst2
    from .evaluation import evaluate, format_accuracy_table
    from .systems import InferenceConfig, load_system

    config = InferenceConfig(args.batch_size, args.max_length, args.padding, args.threads)
    data, _ = load_sst2(args.source, args.data_dir, splits=(args.split,))
    split = data[args.split]
    if args.limit:
        split = split.select(range(min(args.limit, len(split))))
    system = load_system(args.model, config, name=args.name)
    out_dir = Path(args.output or Path("runs") / "evaluate" / system.name)
    params = {"model": args.model, "split": args.split, "limit": args.limit, **vars(config)}
    result = evaluate(system, split, out_dir, params=params, progress=not args.quiet)
    print(format_accuracy_table([result]))
    print(f"wrote {out_dir / result['predictions']} and {out_dir / 'accuracy.json'}")
    return 0


def cmd_build_standin(args) -> int:
    from .data import load_sst2
    from .standin import FinetuneConfig, build_standin

    config = FinetuneConfig(train_examples=args.train_examples, epochs=args.epochs, learning_rate=args.learning_rate, threads=args.threads)
    data, files = load_sst2("tsv" if args.source == "auto" else args.source, args.data_dir, splits=("train", "validation"))
    record = build_standin(args.output, data, files, config, progress=not args.quiet)
    accuracy = record["validation"]
    print(f"stand-in in {args.output}: validation {accuracy['correct']}/{accuracy['n']} = {100 * accuracy['accuracy']:.2f} %, "
          f"fine-tune {record['training']['steps']} steps in {record['training']['seconds'] / 60:.1f} min")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sst2bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser("evaluate", help="accuracy of one model on an SST-2 split")
    evaluate.add_argument("--model", required=True, help="a local model folder (PyTorch or ONNX) or a Hub model id")
    evaluate.add_argument("--split", choices=["train", "validation"], default="validation")
    evaluate.add_argument("--limit", type=int, default=0, help="score only the first N examples (0 = all)")
    evaluate.add_argument("--name", help="system name in tables and file names (default: the folder name)")
    evaluate.add_argument("--output", help="folder for predictions and accuracy.json (default runs/evaluate/NAME)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_inference_options(evaluate)
    _add_data_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    standin = commands.add_parser("build-standin", help="build the offline stand-in model (convert + fine-tune)")
    standin.add_argument("--output", default="models/standin/fp32", help="where the model goes (default models/standin/fp32)")
    standin.add_argument("--train-examples", type=int, default=0, help="fine-tune on N train examples (0 = all)")
    standin.add_argument("--epochs", type=float, default=2.0)
    standin.add_argument("--learning-rate", type=float, default=1e-4)
    standin.add_argument("--threads", type=int, default=2)
    standin.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_options(standin)
    standin.set_defaults(func=cmd_build_standin)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
