"""INC static (inc-static) on this CPU: its first int8 trial's accuracy on the `ci` run's tuning split,
accepted at once (tolerable_loss 0.99, one trial), per weight layout. Needs `make check` (models/ci).

    SST2_DATA_DIR=../shared/data/sst2 .venv/bin/python benchmarks/inc_first_trial.py 8bit 7bit inc-7bit

8bit: full-range weights; 7bit: 7-bit weights, 8-bit activations (what reduce_range means now);
inc-7bit: INC's own reduce_range, which narrows the activations too (the behaviour before this change).
"""

import contextlib
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from unittest import mock

from sst2bench.config import load_run
from sst2bench.provenance import cpu_info, isa_class
from sst2bench.quantization import inc, preset
from sst2bench.quantization.run import quantize
from sst2bench.stages.common import load_data, tuning_split

print(f"{cpu_info()['model']}, int8 class {isa_class()}")
cfg = load_run("ci")
data, _ = load_data(cfg)
split = tuning_split(cfg, data)
tuning, train = split.tuning, split.train
inference = replace(cfg.inference, threads=2)
variants = {
    "8bit": dict(isa="none", reduce_range=False),
    "7bit": dict(isa="none", reduce_range=True),
}


def narrowing_both(make_config):
    """inc_config as it was: INC's own reduce_range, which narrows weights and activations alike."""

    def config(recipe):
        made = make_config(recipe)
        made.reduce_range = True
        return made

    return config


for name in sys.argv[1:]:
    recipe = preset("inc-static", tolerable_loss=0.99, max_trials=1, **variants[name.removeprefix("inc-")])
    patch = mock.patch.object(inc, "inc_config", narrowing_both(inc.inc_config)) if name.startswith("inc-") else contextlib.nullcontext()
    with patch, tempfile.TemporaryDirectory() as out:
        record = quantize(recipe, Path("models/ci/fp32-onnx"), Path(out) / name, train, tuning, 2, inference=inference)
    trials = record["tuning"]["trials"]
    print(
        f"{name}: fp32 {100 * trials[0]['accuracy']:.2f} %, first int8 trial {100 * trials[1]['accuracy']:.2f} % on {len(tuning)} tuning sentences",
        flush=True,
    )
