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
# # 80 · Final split
# Every system of the run on the labelled final split (params `final_test`: SST-2's labelled test
# sentences here), each paired with fp32 PyTorch: the one count no choice was made on. Runs after
# every other stage; nothing before it opens the file. Writes `runs/<run>/final.json`.

# %% tags=["parameters"]
run: str = "standin"  # which params/<run>.yaml to use
quick: bool = False  # unused here: the final split is always scored whole

# %%
from sst2bench.look import use_report_style

use_report_style()  # tables and figures as in the HTML report

# %%
from sst2bench.config import load_run
from sst2bench.noninferiority import noninferiority_table
from sst2bench.stages.final import stage_final

cfg = load_run(run)

# %%
result = stage_final(cfg)
noninferiority_table(result.systems) if result.done else result.reason
