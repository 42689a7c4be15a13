"""Why ONNX Runtime's transformer optimizer fuses no Attention on the DistilBERT export, and a graph it can fuse.

    .venv/bin/python benchmarks/attention_fusion.py                      # models/ci (else models/standin), else a tiny model
    .venv/bin/python benchmarks/attention_fusion.py --run standin        # another run's export
    .venv/bin/python benchmarks/attention_fusion.py --tiny               # a random 6-layer dim-384 DistilBERT built here
    .venv/bin/python benchmarks/attention_fusion.py --iterations 300 --rounds 3 --no-int8

What it does, in one process (see docs/research/attention-fusion.md):

1. the fp32 export (``models/<run>/fp32-onnx/model.onnx``, made by ``sst2bench.export.export_onnx``);
2. ``optimize_model(model_type="bert")`` on it as ``quantization/ort.py prepare_source`` does today;
3. ``bert_form_attention`` (below) on the export, then the same ``optimize_model``: Attention and
   EmbedLayerNormalization fuse; also with ``FusionOptions.use_raw_attention_mask()``;
4. checks every fp32 graph against the export (and PyTorch when the model folder is there) on
   batches of different lengths with padding;
5. optionally ORT dynamic int8 (``quantize_dynamic``, per channel) of today's graph and of the fused one;
6. times them side by side: batch 1, 1 intra-op thread, sentences of 24-28 tokens, interleaved rounds.

Writes scratch models to ``--work`` (default /tmp/attention_fusion) and prints Markdown tables.
Timings are worth reading only beside the CPU line and the load average it prints.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx

from sst2bench.fusion import bert_form_attention

REPO = Path(__file__).resolve().parents[1]

COUNTED = (
    "Attention", "QAttention", "EmbedLayerNormalization", "QEmbedLayerNormalization", "SkipLayerNormalization", "LayerNormalization",
    "BiasGelu", "MatMul", "MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear", "Softmax", "Where", "Reshape", "Transpose",
    "Gather",
)  # fmt: skip


# ----------------------------------------------------------------------------- graphs


def op_counts(path: Path) -> dict[str, int]:
    counts = collections.Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)
    return {op: counts[op] for op in COUNTED}


def optimize(source: Path, out: Path, config: dict, raw_mask: bool = False) -> Path:
    """What prepare_source does: onnxruntime.transformers' optimizer, model_type bert, opt_level 1."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    if raw_mask:
        options.use_raw_attention_mask(True)
    fused = optimize_model(
        str(source), model_type="bert", num_heads=config["n_heads"], hidden_size=config["dim"], opt_level=1, optimization_options=options
    )
    fused.save_model_to_file(str(out))
    return out


def quantize(source: Path, out: Path, operators: list[str]) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out.with_suffix(".prep.onnx")
    quant_pre_process(str(source), str(prepared), skip_optimization=True, auto_merge=True)  # as prepare_source does
    quantize_dynamic(str(prepared), str(out), op_types_to_quantize=operators, per_channel=True, weight_type=QuantType.QInt8)
    prepared.unlink()
    return out


# ----------------------------------------------------------------------------- model and data


def build_tiny(folder: Path) -> Path:
    """A random DistilBERT of the stand-in's shape (6 layers, dim 384, 12 heads, hidden 1536), exported by the project."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizerFast

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import write_vocab  # the tests' tiny WordPiece vocabulary
    from sst2bench.export import export_onnx

    torch_dir = folder / "fp32"
    vocab = write_vocab(torch_dir)
    tokenizer = DistilBertTokenizerFast(vocab_file=str(vocab), do_lower_case=True, model_input_names=["input_ids", "attention_mask"])
    labels = {0: "NEGATIVE", 1: "POSITIVE"}
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size, dim=384, hidden_dim=1536, n_layers=6, n_heads=12, id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    torch.manual_seed(0)
    DistilBertForSequenceClassification(config).eval().save_pretrained(torch_dir)
    tokenizer.save_pretrained(torch_dir)
    export_onnx(torch_dir, folder / "fp32-onnx")
    return folder


def sst2_validation() -> list[tuple[str, int]] | None:
    for folder in (os.environ.get("SST2_DATA_DIR"), REPO / "data" / "raw" / "sst2", REPO.parent / "shared" / "data" / "sst2"):
        if folder and (Path(folder) / "validation.tsv").is_file():
            rows = (Path(folder) / "validation.tsv").read_text().splitlines()[1:]
            return [(s.strip(), int(y)) for s, y in (r.rsplit("\t", 1) for r in rows if r.strip())]
    return None


# ----------------------------------------------------------------------------- measuring


def session(path: Path, threads: int = 1):
    import onnxruntime as ort

    options = ort.SessionOptions()  # as systems/onnxruntime.py: default (all) graph optimizations
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def encode(tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
    return {"input_ids": batch["input_ids"].astype(np.int64), "attention_mask": batch["attention_mask"].astype(np.int64)}


def cpu_line() -> str:
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("?", "x86_64", ""):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [f for f in sorted(flags) if f in ("avx2", "fma", "avx_vnni", "amx_int8", "amx_bf16") or f.startswith("avx512")]
    return f"{model}, {os.cpu_count()} logical CPUs; ISA: {' '.join(isa) or 'none of avx2/avx512/vnni'}; VNNI: {'yes' if any('vnni' in f for f in isa) else 'no'}"


def profile(graphs: dict[str, Path], feeds: list, calls: int, work: Path) -> dict:
    """ONNX Runtime's profiler: ms per call spent in each op type (kernel time, 1 thread), per graph."""
    import onnxruntime as ort

    result = {}
    for name, path in graphs.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        options.enable_profiling = True
        options.profile_file_prefix = str(work / "profile")
        s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for i in range(calls):
            s.run(None, feeds[i % len(feeds)])
        trace = Path(s.end_profiling())
        events = json.loads(trace.read_text())
        trace.unlink()
        by_op = collections.Counter()
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                by_op[e["args"]["op_name"]] += e["dur"] / 1e3 / calls
        result[name] = dict(by_op.most_common())
    ops = sorted({op for r in result.values() for op in r}, key=lambda op: -max(r.get(op, 0) for r in result.values()))
    print(f"\n## ORT profiler: ms per call by op type ({calls} calls each, batch 1, 1 thread; kernel time only)\n")
    print("| op | " + " | ".join(result) + " |")
    print("|---" * (len(result) + 1) + "|")
    for op in ops:
        print(f"| {op} | " + " | ".join(f"{r.get(op, 0):.3f}" if op in r else "" for r in result.values()) + " |")
    print("| **sum** | " + " | ".join(f"{sum(r.values()):.2f}" for r in result.values()) + " |")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="models/<run> to read (default: ci, else standin, else --tiny)")
    parser.add_argument("--tiny", action="store_true", help="build a random stand-in-shaped DistilBERT instead")
    parser.add_argument("--work", type=Path, default=Path("/tmp/attention_fusion"))
    parser.add_argument("--iterations", type=int, default=200, help="timed calls per system per round")
    parser.add_argument("--rounds", type=int, default=3, help="0: no timing")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--profile", type=int, default=0, help="also profile this many calls per graph (ORT profiler, ms per op type)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    if args.tiny:
        models = build_tiny(args.work / "tiny")
    else:
        runs = [args.run] if args.run else ["ci", "standin"]
        found = [REPO / "models" / r for r in runs if (REPO / "models" / r / "fp32-onnx" / "model.onnx").is_file()]
        models = found[0] if found else build_tiny(args.work / "tiny")
    export_dir, torch_dir = models / "fp32-onnx", models / "fp32"
    config = json.loads((export_dir / "config.json").read_text())
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(export_dir if (export_dir / "tokenizer.json").is_file() else torch_dir)
    print(f"model: {export_dir} ({config.get('n_layers')} layers, dim {config['dim']}, {config['n_heads']} heads)")
    print(f"CPU: {cpu_line()}")
    import onnxruntime
    import transformers

    print(f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}, transformers {transformers.__version__}\n")

    # ---- graphs
    work = args.work
    export = export_dir / "model.onnx"
    today = optimize(export, work / "today.onnx", config)
    rewritten = onnx.load(str(export))
    blocks = bert_form_attention(rewritten)
    onnx.save(rewritten, str(work / "bert_form.onnx"))
    fused = optimize(work / "bert_form.onnx", work / "fused.onnx", config)
    fused_raw = optimize(work / "bert_form.onnx", work / "fused_raw_mask.onnx", config, raw_mask=True)
    fp32 = {
        "fp32 export (unfused)": export,
        "fp32 optimizer today": today,
        "fp32 rewrite + optimizer": fused,
        "fp32 rewrite + optimizer, raw mask": fused_raw,
    }
    int8 = {}
    if not args.no_int8:
        today_ops, fused_ops = ["MatMul", "Attention", "Gather"], ["MatMul", "Attention", "EmbedLayerNormalization"]
        int8 = {
            "int8 dyn-pc of today's graph [MatMul, Attention]": quantize(today, work / "today_int8.onnx", today_ops[:2]),
            "int8 dyn-pc of today's graph [MatMul, Attention, Gather]": quantize(today, work / "today_int8_emb.onnx", today_ops),
            "int8 dyn-pc of fused graph, raw mask [MatMul, Attention]": quantize(fused_raw, work / "fused_int8.onnx", fused_ops[:2]),
            "int8 dyn-pc of fused graph, raw mask [MatMul, Attention, EmbedLayerNormalization]": quantize(
                fused_raw, work / "fused_int8_emb.onnx", fused_ops
            ),
            "int8 dyn-pc of fused graph, raw mask [MatMul, Gather] (ort-dynamic-pc's operators today)": quantize(
                fused_raw, work / "fused_int8_today_ops.onnx", ["MatMul", "Gather"]
            ),
            "int8 dyn-pc of fused graph, mask index [MatMul, Attention, EmbedLayerNormalization]": quantize(
                fused, work / "fused_mask_index_int8_emb.onnx", fused_ops
            ),
        }
    graphs = {**fp32, **int8}
    print(f"bert_form_attention rewrote {blocks} attention blocks\n")
    print("## Op counts\n")
    print("| graph | " + " | ".join(COUNTED) + " | MB |")
    print("|---" * (len(COUNTED) + 2) + "|")
    counts = {}
    for name, path in graphs.items():
        counts[name] = op_counts(path)
        print(f"| {name} | " + " | ".join(str(counts[name][op]) for op in COUNTED) + f" | {path.stat().st_size / 2**20:.1f} |")

    # ---- fp32 equality: padded batches of different lengths
    sessions = {name: session(path) for name, path in graphs.items()}
    data = sst2_validation()
    if data is None or tokenizer.vocab_size < 1000:
        words = "good great fun charming moving bad dull boring awful mess film movie story it 's a the and is not n't but very".split()
        rng = random.Random(0)
        data = [(" ".join(rng.choice(words) for _ in range(rng.randint(2, 40))), rng.randint(0, 1)) for _ in range(400)]
    texts = [t for t, _ in data]
    rng = random.Random(0)
    batches = [[t] for t in rng.sample(texts, 8)] + [rng.sample(texts, k) for k in (2, 4, 8, 8, 16)]
    torch_model = None
    if (torch_dir / "config.json").is_file():
        from transformers import AutoModelForSequenceClassification

        torch_model = AutoModelForSequenceClassification.from_pretrained(torch_dir).eval()
    reference = [sessions["fp32 export (unfused)"].run(None, encode(tokenizer, b))[0] for b in batches]
    padded = "/".join(sorted({str(encode(tokenizer, b)["input_ids"].shape[1]) for b in batches}, key=int))
    print(f"\n## fp32: max |logit difference| over padded batches (sizes 1-16, lengths {padded} tokens)\n")
    left = tokenizer.__class__.from_pretrained(tokenizer.name_or_path, padding_side="left")
    left_batches = [encode(left, b) for b in batches if len(b) > 1]
    left_reference = [sessions["fp32 export (unfused)"].run(None, f)[0] for f in left_batches]
    print("| graph | vs fp32 export | vs PyTorch | left-padded batches vs fp32 export |")
    print("|---|---|---|---|")
    diffs = {}
    for name in fp32:
        d_export = max(float(np.abs(sessions[name].run(None, encode(tokenizer, b))[0] - r).max()) for b, r in zip(batches, reference))
        d_left = max(float(np.abs(sessions[name].run(None, f)[0] - r).max()) for f, r in zip(left_batches, left_reference))
        d_torch = None
        if torch_model is not None:
            import torch

            with torch.no_grad():
                d_torch = max(
                    float(
                        np.abs(
                            sessions[name].run(None, f := encode(tokenizer, b))[0]
                            - torch_model(**{k: torch.from_numpy(v) for k, v in f.items()}).logits.numpy()
                        ).max()
                    )
                    for b in batches
                )
        diffs[name] = (d_export, d_torch, d_left)
        print(f"| {name} | {d_export:.2e} | {'n/a' if d_torch is None else f'{d_torch:.2e}'} | {d_left:.2e} |")

    # ---- int8 agreement and accuracy (batch 1, the whole validation split when it is SST-2)
    def probs(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    accuracy = {}
    if int8:
        print(f"\n## int8 vs fp32 on {len(data)} sentences, batch 1\n")
        print("| graph | accuracy | agreement with fp32 | max |prob diff| |")
        print("|---|---|---|---|")
        feeds = [encode(tokenizer, [t]) for t in texts]
        base = np.concatenate([sessions["fp32 export (unfused)"].run(None, f)[0] for f in feeds])
        labels = np.array([y for _, y in data])
        accuracy["fp32 export (unfused)"] = (float((base.argmax(1) == labels).mean()), 1.0, 0.0)
        print(f"| fp32 export (unfused) | {accuracy['fp32 export (unfused)'][0]:.4f} | 1 | 0 |")
        for name in int8:
            out = np.concatenate([sessions[name].run(None, f)[0] for f in feeds])
            accuracy[name] = (
                float((out.argmax(1) == labels).mean()),
                float((out.argmax(1) == base.argmax(1)).mean()),
                float(np.abs(probs(out) - probs(base)).max()),
            )
            print(f"| {name} | {accuracy[name][0]:.4f} | {accuracy[name][1]:.4f} | {accuracy[name][2]:.2e} |")

    # ---- latency: batch 1, 1 thread, sentences of 24-28 tokens, interleaved rounds
    if args.rounds < 1:
        return
    lengths = {t: len(tokenizer(t)["input_ids"]) for t in texts}
    chosen = [t for t in texts if 24 <= lengths[t] <= 28] or sorted(texts, key=lambda t: abs(lengths[t] - 26))[:50]
    feeds = [encode(tokenizer, [t]) for t in chosen]
    mean_tokens = statistics.mean(f["input_ids"].shape[1] for f in feeds)
    times = {name: [] for name in graphs}
    per_round = {name: [] for name in graphs}
    for s in sessions.values():
        for i in range(args.warmup):
            s.run(None, feeds[i % len(feeds)])
    order = list(graphs)
    for r in range(args.rounds):
        for name in order[r % len(order) :] + order[: r % len(order)]:  # rotate who goes first
            s, these = sessions[name], []
            for i in range(args.iterations):
                f = feeds[i % len(feeds)]
                t0 = time.perf_counter()
                s.run(None, f)
                these.append((time.perf_counter() - t0) * 1e3)
            times[name] += these
            per_round[name].append(statistics.median(these))
    base = statistics.median(times["fp32 export (unfused)"])
    print(
        f"\n## Latency: batch 1, intra_op_num_threads=1, {len(feeds)} sentences of {min(lengths[t] for t in chosen)}-"
        f"{max(lengths[t] for t in chosen)} tokens (mean {mean_tokens:.1f}), {args.rounds} rounds x {args.iterations} calls, "
        f"session.run only\n"
    )
    print(f"CPU: {cpu_line()}; load average at the end: {os.getloadavg()[0]:.2f}\n")
    print("| graph | p50 ms | p90 ms | per-round p50 ms | best round ms | fp32 export / this (p50) | (best round) |")
    print("|---|---|---|---|---|---|---|")
    latency = {}
    best_base = min(per_round["fp32 export (unfused)"])
    for name in graphs:
        p50 = statistics.median(times[name])
        p90 = float(np.percentile(times[name], 90))
        latency[name] = {"p50_ms": p50, "p90_ms": p90, "round_p50_ms": per_round[name]}
        print(
            f"| {name} | {p50:.2f} | {p90:.2f} | {', '.join(f'{x:.2f}' for x in per_round[name])} | {min(per_round[name]):.2f} "
            f"| {base / p50:.2f}x | {best_base / min(per_round[name]):.2f}x |"
        )

    profiles = profile(graphs, feeds, args.profile, work) if args.profile else {}

    if args.json:
        args.json.write_text(
            json.dumps(
                {"model": str(export_dir), "cpu": cpu_line(), "blocks": blocks, "op_counts": counts, "fp32_max_abs_diff": diffs,
                 "int8_accuracy": accuracy, "latency": latency, "iterations": args.iterations, "rounds": args.rounds,
                 "mean_tokens": mean_tokens, "profile_ms_per_call": profiles},
                indent=2,
            )
        )  # fmt: skip


if __name__ == "__main__":
    main()
