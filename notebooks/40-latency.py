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
# # 40 · Latency, throughput, memory and the machine's limit
# Every system in its own worker process with every thread pool pinned, warmed by one untimed call on
# every batch it will time, then timed in interleaved rounds: each round runs every system once, in a
# seeded random order drawn for that round, and times every batch equally often in a seeded random
# order. Above batch 1 the sample is sorted by token length and neighbours are batched
# (`latency.batching`, recorded in each row). Speed-ups are per-round p50 ratios against the faster
# fp32 ONNX Runtime row: the median and its range; a bar is met only when the range's low end clears
# it. The CPU's matrix-multiply peak is measured with ONNX Runtime itself.
# Writes `runs/<run>/latency.json`.

# %% tags=["parameters"]
run: str = "standin"  # which params/<run>.yaml to use
quick: bool = False  # batch 1, 1 thread, a few calls: under a minute

# %%
from sst2bench.look import use_report_style

use_report_style()  # tables and figures as in the HTML report

# %%
import pandas as pd

from sst2bench.config import load_run
from sst2bench.stages.latency import stage_latency

cfg = load_run(run)

# %%
result = stage_latency(cfg, quick=quick)
result.table() if result.done else result.reason

# %% [markdown]
# Speed-up over the faster fp32 baseline, median and min–max over rounds. Above, a percentile is blank
# unless at least `latency.percentile_tail_calls` calls lie beyond it (p99: 100 times that many calls)
# and its distribution-free interval exists; the intervals are beside p50 and p99.

# %%
pd.DataFrame([r.model_dump() for r in result.ratios])

# %% [markdown]
# The machine's limit (method in `result.peak.method`) and each system's forward pass as a fraction of it.

# %%
pd.DataFrame([p.model_dump() for p in result.peak.peaks]) if result.peak else "peak not measured (quick run or latency.peak: false)"

# %%
pd.DataFrame([f.model_dump() for f in result.peak_fractions])
