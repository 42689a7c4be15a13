"""One measurement of OpenVINO fp32, NNCF int8 and INC PyTorch int8 on the stand-in (SST-2 validation, batch 1, 1 thread).

Usage: SST2_DATA_DIR=... .venv/bin/python docs/research/snippets/measure_peers.py <copy of models/standin (fp32, fp32-onnx)> <out dir> [ov] [nncf] [torch]"""
import json, shutil, sys, time
from collections import Counter
from pathlib import Path
from transformers import AutoTokenizer
from sst2bench.data import load_sst2, make_tuning_split, TuningConfig
from sst2bench.paths import size_mib
from sst2bench.provenance import cpu_info
from sst2bench.quantization.base import QuantizeJob, get_method
from sst2bench.quantization.calibration import calibration_data
from sst2bench.quantization.recipes import Recipe
from sst2bench.quantization.run import truncated_as_inference
from sst2bench.systems import InferenceConfig, OrtSystem
from sst2bench.systems.openvino import OpenVinoSystem
from sst2bench.systems.torch_int8 import TorchInt8System

which = sys.argv[3:] or ["ov", "nncf", "torch"]
base = Path(sys.argv[1]); out = Path(sys.argv[2]); out.mkdir(exist_ok=True)
splits, _ = load_sst2("tsv", splits=("train", "validation"))
validation = splits["validation"]; texts, gold = list(validation["sentence"]), list(validation["label"])
tuning = make_tuning_split(splits["train"], validation, TuningConfig())
inference = InferenceConfig()
results = {"cpu": cpu_info()}
def score(system):
    t = time.perf_counter(); labels = [p.label for p in system.predict(texts)]
    return labels, sum(l == g for l, g in zip(labels, gold)), round(time.perf_counter() - t, 1)
ort_labels, ort_correct, _ = score(OrtSystem(base / "fp32-onnx", inference)); results["fp32-ort"] = {"correct": ort_correct}
if "ov" in which:
    ov = OpenVinoSystem(base / "fp32-onnx", inference)
    labels, correct, secs = score(ov)
    results["fp32-openvino"] = {"correct": correct, "agree_with_ort": sum(a == b for a, b in zip(labels, ort_labels)), "properties": ov.runtime_properties(), "size_mib": size_mib(base / "fp32-onnx" / "model.onnx")}
    print(results["fp32-openvino"], flush=True)
tok = AutoTokenizer.from_pretrained(base / "fp32-onnx")
def run(method_name, recipe, source, torch_dir=None):
    method = get_method(method_name)()
    recipe = truncated_as_inference(recipe, inference)
    d = out / recipe.name; shutil.rmtree(d, ignore_errors=True); work = out / f".{recipe.name}-work"; shutil.rmtree(work, ignore_errors=True); work.mkdir(parents=True)
    job = QuantizeJob(recipe=recipe, source=source, out_dir=d, work_dir=work, calibration=calibration_data(recipe.calibration, tok, tuning.train),
                      tuning=tuning.tuning, inference=inference, torch_dir=torch_dir)
    d.mkdir(parents=True)
    t = time.perf_counter(); record = method.quantize(job); secs = round(time.perf_counter() - t, 1)
    for f in (torch_dir or source.parent).iterdir():
        if f.is_file() and f.suffix not in (".onnx", ".safetensors"): shutil.copy2(f, d / f.name)
    table = method.op_table(job)
    size = round(sum((d / f).stat().st_size for f in method.output_files()) / 2**20, 2)
    return d, record, secs, table, size
if "nncf" in which:
    recipe = Recipe.build("nncf-openvino", "nncf-openvino")
    d, record, secs, table, size = run("nncf-openvino", recipe, base / "fp32-onnx" / "model.onnx")
    labels, correct, _ = score(OpenVinoSystem(d, inference))
    results["nncf-openvino"] = {"correct": correct, "agree_with_ort": sum(a == b for a, b in zip(labels, ort_labels)), "size_mib": size, "quantize_seconds": secs, "record": record,
                                "ops": Counter(r["precision"] for r in table)}
    print(results["nncf-openvino"], flush=True)
if "torch" in which:
    recipe = Recipe.build("inc-torch", "inc-torch")
    d, record, secs, table, size = run("inc-torch", recipe, base / "fp32", torch_dir=base / "fp32")
    system = TorchInt8System.from_pretrained(str(d), inference)
    labels, correct, _ = score(system)
    results["inc-torch"] = {"correct": correct, "agree_with_ort": sum(a == b for a, b in zip(labels, ort_labels)), "size_mib": size, "quantize_seconds": secs,
                            "record": record, "ops": Counter(r["precision"] for r in table),
                            "module_types": Counter(f"{type(m).__module__}.{type(m).__name__}" for m in system.model.modules() if "quantized" in type(m).__module__)}
    import torch
    with torch.profiler.profile() as prof:
        system.predict(texts[:5])
    results["inc-torch"]["profile_ops"] = sorted({e.key for e in prof.key_averages() if "quantized" in e.key or "linear" in e.key})
    results["torch_engine"] = torch.backends.quantized.engine
    print(results["inc-torch"], flush=True)
json.dump(results, open(out / f"results-{'-'.join(which)}.json", "w"), indent=1, default=str)
