# %% [markdown]
# # 40 · Latency, throughput and memory
# The same protocol for every system, each in its own process with its thread count pinned.
# Writes `runs/<run>/latency.json`.

# %% tags=["parameters"]
run: str = "standin"  # which params/<run>.yaml to use
quick: bool = False  # batch 1, 1 thread, a few calls: under a minute

# %%
import os

import pandas as pd

from sst2bench.config import load_run
from sst2bench.pipeline import repo_root
from sst2bench.stages import stage_latency

os.chdir(repo_root())
cfg = load_run(run)

# %%
result = stage_latency(cfg, quick=quick)
pd.DataFrame(result["results"]).drop(columns=["durations_ms"], errors="ignore") if result["status"] == "done" else result["reason"]
