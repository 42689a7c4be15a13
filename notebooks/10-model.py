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
# # 10 · The fp32 model
# Builds (stand-in) or downloads (Hub) the run's fp32 classifier, exports it to ONNX and checks
# that ONNX Runtime agrees with PyTorch on the evaluation split; also the graph ONNX Runtime's
# transformer optimizer fuses (the int8 recipes' start) and the tuning split. Writes `runs/<run>/model.json`.

# %% tags=["parameters"]
run: str = "standin"  # which params/<run>.yaml to use
quick: bool = False  # short settings for smoke runs (used by later stages)

# %%
from sst2bench.look import use_report_style

use_report_style()  # tables and figures as in the HTML report

# %%
from sst2bench.config import load_run
from sst2bench.stages.model import stage_model

cfg = load_run(run)

# %%
model = stage_model(cfg)
model.model_dump(exclude={"provenance", "standin", "data_files"})
