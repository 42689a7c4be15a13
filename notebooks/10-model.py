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
# that ONNX Runtime agrees with PyTorch on the evaluation split. Writes `runs/<run>/model.json`.

# %% tags=["parameters"]
run: str = "standin"  # which params/<run>.yaml to use
quick: bool = False  # short settings for smoke runs (used by later stages)

# %%
import json
from sst2bench.config import load_run
from sst2bench.stages import stage_model

cfg = load_run(run)

# %%
model = stage_model(cfg)
print(json.dumps({k: v for k, v in model.items() if k not in ("provenance", "standin", "data_files")}, indent=2))
