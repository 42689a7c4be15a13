"""Why NNCF's int8 is slower than fp32 in OpenVINO on a CPU without VNNI: OpenVINO's own
performance counters (``PERF_COUNT``) for fp32-openvino and nncf-openvino side by side, on the
`ci` run's fp32 export (needs `make check`, i.e. models/ci), batch 1, one thread, the same sentences.

    SST2_DATA_DIR=../shared/data/sst2 .venv/bin/python benchmarks/openvino_profile.py [sentences]

Prints the CPU and its int8 class, each model's median call, and per node type and kernel
(``exec_type``, e.g. ``brgemm_avx2_FP32`` or ``jit_avx2_I8``) the summed time per call, so the time
int8 adds or saves is attributed to the kernels OpenVINO actually picked on this CPU.
"""

import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import openvino as ov
import openvino.properties as props

from sst2bench.config import load_run
from sst2bench.provenance import cpu_info, isa_class
from sst2bench.quantization import preset
from sst2bench.quantization.run import quantize
from sst2bench.stages.common import eval_split, load_data, tuning_split
from sst2bench.systems.base import InferenceConfig
from sst2bench.systems.openvino import OpenVinoSystem, compile_properties, model_file

SOURCE = Path("models/ci/fp32-onnx")
count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
print(f"{cpu_info()['model']}, int8 class {isa_class()}, OpenVINO {ov.__version__}, {count} validation sentences, batch 1, 1 thread")
cfg = load_run("ci")
data, _ = load_data(cfg)
sentences = list(eval_split(cfg, data)["sentence"])[:count]


def profile(folder: Path) -> tuple[float, dict]:
    """Median call in ms, and per (node type, kernel) the mean time per call in ms."""
    system = OpenVinoSystem(folder, InferenceConfig(batch_size=1, threads=1))
    core = ov.Core()
    model = core.read_model(str(model_file(folder)))
    system.compiled_model = core.compile_model(model, "CPU", {**compile_properties(1), props.enable_profiling: True})
    system.request = system.compiled_model.create_infer_request()
    for text in sentences:  # every shape once: OpenVINO compiles per new input shape
        system.logits([text])
    per_kernel: dict[tuple[str, str], float] = defaultdict(float)
    calls = []
    for text in sentences:
        started = time.perf_counter()
        system.logits([text])
        calls.append((time.perf_counter() - started) * 1e3)
        for info in system.request.get_profiling_info():
            if info.status == ov.ProfilingInfo.Status.EXECUTED:
                per_kernel[info.node_type, info.exec_type] += info.real_time.total_seconds() * 1e3 / len(sentences)
    return statistics.median(calls), per_kernel


with tempfile.TemporaryDirectory() as out:
    splits = tuning_split(cfg, data)
    int8_dir = Path(out) / "nncf-openvino"
    record = quantize(preset("nncf-openvino"), SOURCE, int8_dir, splits.train, None, 2, inference=cfg.inference)
    print(f"nncf-openvino: overflow fix {(record.get('tuning') or {}).get('overflow_fix')} (the recipe's 'auto' on this CPU)")
    results = {"fp32-openvino": profile(SOURCE), "nncf-openvino": profile(int8_dir)}

for name, (median, kernels) in results.items():
    total = sum(kernels.values())
    print(f"\n{name}: median call {median:.2f} ms; counted kernels {total:.2f} ms per call")
    print(f"  {'node type':<22} {'kernel (exec_type)':<34} {'ms/call':>8} {'share':>6}")
    for (node_type, exec_type), ms in sorted(kernels.items(), key=lambda item: -item[1])[:14]:
        print(f"  {node_type:<22} {exec_type:<34} {ms:8.3f} {100 * ms / total:5.1f}%")
fp32, int8 = (results[n][1] for n in ("fp32-openvino", "nncf-openvino"))
by_type = lambda kernels: {t: sum(ms for (nt, _), ms in kernels.items() if nt == t) for t in {nt for nt, _ in kernels}}  # noqa: E731
fp32_types, int8_types = by_type(fp32), by_type(int8)
print("\nper node type, ms per call: fp32 → int8 (difference)")
for node_type in sorted(set(fp32_types) | set(int8_types), key=lambda t: -abs(int8_types.get(t, 0) - fp32_types.get(t, 0)))[:12]:
    a, b = fp32_types.get(node_type, 0.0), int8_types.get(node_type, 0.0)
    print(f"  {node_type:<22} {a:7.3f} → {b:7.3f} ({b - a:+.3f})")
