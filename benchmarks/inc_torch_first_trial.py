"""INC's PyTorch int8 (inc-torch) on this CPU: its first int8 trial's accuracy on the `ci` run's tuning
split, accepted at once (tolerable_loss 0.99, one trial), per layout. Needs `make check` (models/ci).

    SST2_DATA_DIR=../shared/data/sst2 .venv/bin/python benchmarks/inc_torch_first_trial.py inc-alone 7bit 8bit

inc-alone: INC's adaptor as it is (without VNNI it gives activations 7 bits, weights 8);
7bit: 8-bit activations, 7-bit weights (what isa="auto" picks without VNNI); 8bit: both 8-bit.
"""

import contextlib
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from unittest import mock

from sst2bench.config import load_run
from sst2bench.provenance import cpu_info, isa_class
from sst2bench.quantization import inc_torch, preset
from sst2bench.quantization.run import quantize
from sst2bench.stages.common import load_data, tuning_split

print(f"{cpu_info()['model']}, int8 class {isa_class()}")
cfg = load_run("ci")
data, _ = load_data(cfg)
split = tuning_split(cfg, data)
inference = replace(cfg.inference, threads=2)
variants = {"inc-alone": dict(isa="none"), "7bit": dict(isa="none", reduce_range=True), "8bit": dict(isa="none")}

for name in sys.argv[1:]:
    recipe = preset("inc-torch", tolerable_loss=0.99, max_trials=1, **variants[name])
    alone = mock.patch.object(inc_torch, "eight_bit_activations", lambda seven_bit_weights: contextlib.nullcontext())
    with alone if name == "inc-alone" else contextlib.nullcontext(), tempfile.TemporaryDirectory() as out:
        record = quantize(
            recipe, Path("models/ci/fp32-onnx"), Path(out) / name, split.train, split.tuning, 2, torch_dir=cfg.fp32_dir, inference=inference
        )
    trials = record["tuning"]["trials"]
    print(
        f"{name}: fp32 {100 * trials[0]['accuracy']:.2f} %, first int8 trial {100 * trials[1]['accuracy']:.2f} % on {len(split.tuning)} tuning sentences",
        flush=True,
    )
