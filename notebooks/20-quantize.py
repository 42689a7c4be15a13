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
# # 20 · int8 quantization
# Applies every recipe of the run (ONNX Runtime static and dynamic through optimum, Intel Neural
# Compressor's accuracy-aware static PTQ) and records ops, fallbacks, size and time. Accuracy-aware
# recipes tune on the tuning split; calibration draws from train without the tuning sentences. As
# params ask, static recipes are calibrated with other seeds too, and accuracy-aware ones are tuned on
# the reported split and on each half of it (cross-fitting).
# Writes `runs/<run>/quantize.json`; the models go to `models/<run>/int8/<recipe>/`.

# %% tags=["parameters"]
run: str = "standin"  # which params/<run>.yaml to use
quick: bool = False  # unused here: recipes are the same in quick runs

# %%
from sst2bench.look import use_report_style

use_report_style()  # tables and figures as in the HTML report

# %%
from sst2bench.config import load_run
from sst2bench.stages.quantize import stage_quantize

cfg = load_run(run)

# %%
result = stage_quantize(cfg)
result.table() if result.done else result.reason
