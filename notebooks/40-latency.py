# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (sst2bench)
#     language: python
#     name: sst2bench
# ---

# %% [markdown]
# # 40 · Latency, throughput and memory
# The same protocol for every system, each in its own process with its thread count pinned.
# Writes `runs/<run>/latency.json`.

# %% tags=["parameters"]
run: str = "standin"  # which params/<run>.yaml to use
quick: bool = False  # batch 1, 1 thread, a few calls: under a minute

# %%
from sst2bench.config import load_run
from sst2bench.stages.latency import stage_latency

cfg = load_run(run)

# %%
result = stage_latency(cfg, quick=quick)
result.table() if result.done else result.reason
