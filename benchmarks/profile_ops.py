"""Where an ONNX Runtime model's forward time goes, per op type, at 1 and 2 threads (ORT's own profiler).

    .venv/bin/python benchmarks/profile_ops.py standin fp32-onnx int8/ort-dynamic int8/ort-dynamic-pc

For each model folder under models/<run>/, each thread count and each batch size, the latency
sample's sentences (dynamic padding) are run with ``SessionOptions.enable_profiling``; kernel times
are summed per op type and divided by the calls. The graph ONNX Runtime really runs (after its
load-time fusions) is saved to list its op types: what fused and what runs in fp32. Writes
benchmarks/results/profile-<run>.md and .json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# Kernels that are matrix multiplies (with the dynamic recipes' activation quantization that feeds them).
GEMM_KERNELS = {
    "MatMul",
    "FusedMatMul",
    "Gemm",
    "FusedGemm",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "MatMulInteger",
    "QLinearMatMul",
    "DynamicQuantizeLinear",
}


def profile(model_path: Path, feeds: list[dict], threads: int, workdir: Path) -> tuple[dict, float, collections.Counter]:
    """(per-op-type ms per call, mean model_run ms per call, op types of the optimized graph)."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.optimized_model_filepath = str(workdir / f"{model_path.parent.name}-optimized.onnx")
    options.enable_profiling = True
    options.profile_file_prefix = str(workdir / f"{model_path.parent.name}-t{threads}")
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for feed in feeds[:3]:  # warm-up calls, removed below by counting only the last len(feeds) runs
        session.run(None, {n: feed[n] for n in names})
    for feed in feeds:
        session.run(None, {n: feed[n] for n in names})
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in events if e.get("name") == "model_run"][-len(feeds) :]
    first = runs[0]["ts"]
    per_op: dict[str, float] = collections.defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= first:
            per_op[event["args"]["op_name"]] += event["dur"] / 1000 / len(feeds)
    graph_ops = collections.Counter(
        node.op_type for node in onnx.load(options.optimized_model_filepath, load_external_data=False).graph.node
    )
    return dict(per_op), sum(r["dur"] for r in runs) / 1000 / len(feeds), graph_ops


def main() -> None:
    from transformers import AutoTokenizer

    from sst2bench.config import load_run
    from sst2bench.latency import sample_texts
    from sst2bench.paths import anchor_user_paths
    from sst2bench.stages.common import eval_split, load_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("models", nargs="+", help="folders under models/<run>/, e.g. fp32-onnx int8/ort-dynamic")
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[1, 32])
    parser.add_argument("--calls", type=int, default=32, help="batch-1 calls; larger batches run the same sentences once")
    args = parser.parse_args()
    anchor_user_paths()
    cfg = load_run(args.run)
    data, _ = load_data(cfg, splits=(cfg.data.eval_split,))
    settings = cfg.latency
    texts = sample_texts(list(eval_split(cfg, data)["sentence"]), settings.samples, settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(cfg.models_dir / "fp32-onnx")

    def feeds(batch_size: int) -> list[dict]:
        count = args.calls if batch_size == 1 else max(1, len(texts) // batch_size)
        batches = [[texts[(i * batch_size + j) % len(texts)] for j in range(batch_size)] for i in range(count)]
        encoded = [tokenizer(b, truncation=True, max_length=settings.max_length, padding="longest", return_tensors="np") for b in batches]
        return [{k: v.astype("int64") for k, v in e.items()} for e in encoded]

    report = {"run": args.run, "models": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            model_path = next((cfg.models_dir / name).glob("*.onnx"))
            entry = report["models"].setdefault(name, {"settings": []})
            for batch_size in args.batch_sizes:
                batch_feeds = feeds(batch_size)
                for threads in args.threads:
                    per_op, run_ms, graph_ops = profile(model_path, batch_feeds, threads, Path(scratch))
                    entry["graph_ops"] = dict(sorted(graph_ops.items()))
                    entry["settings"].append({"batch_size": batch_size, "threads": threads, "model_run_ms": run_ms, "per_op_ms": per_op})
                    print(f"{name} b={batch_size} t={threads}: {run_ms:.2f} ms per call", flush=True)

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"profile-{args.run}.json").write_text(json.dumps(report, indent=2))
    lines = [f"# Per-op forward time, run `{args.run}` (ms per call, ONNX Runtime profiler)", ""]
    lines += ["Command: `.venv/bin/python benchmarks/profile_ops.py " + " ".join([args.run, *args.models]) + "`", ""]
    lines += [
        f"Load average when it ended (other processes on this machine): {os.getloadavg()[0]:.1f}. Read 2-thread times as valid only near 0.",
        "",
    ]
    for name, entry in report["models"].items():
        lines += [
            f"## {name}",
            "",
            "Ops in the graph ONNX Runtime runs: " + ", ".join(f"{k} ×{v}" for k, v in entry["graph_ops"].items()),
            "",
        ]
        for batch_size in args.batch_sizes:
            rows = {s["threads"]: s for s in entry["settings"] if s["batch_size"] == batch_size}
            ops = sorted(
                {op for s in rows.values() for op in s["per_op_ms"]}, key=lambda op: -rows[args.threads[0]]["per_op_ms"].get(op, 0)
            )
            header = " | ".join(f"{t} thr" for t in args.threads)
            lines += [f"Batch {batch_size}:", "", f"| op | {header} |", "|---|" + "---|" * len(args.threads)]
            for op in ops:
                lines.append(f"| {op} | " + " | ".join(f"{rows[t]['per_op_ms'].get(op, 0):.3f}" for t in args.threads) + " |")
            shares = [
                sum(v for op, v in rows[t]["per_op_ms"].items() if op in GEMM_KERNELS) / sum(rows[t]["per_op_ms"].values())
                for t in args.threads
            ]
            lines.append("| *GEMM kernels' share* | " + " | ".join(f"*{share:.0%}*" for share in shares) + " |")
            lines.append("| **model_run** | " + " | ".join(f"**{rows[t]['model_run_ms']:.3f}**" for t in args.threads) + " |")
            lines.append("")
    (RESULTS / f"profile-{args.run}.md").write_text("\n".join(lines))
    print(f"wrote {RESULTS / f'profile-{args.run}.md'}")


if __name__ == "__main__":
    main()
