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
# # 30 · Accuracy
# Every system on the evaluation split, each compared pairwise with fp32 PyTorch (paired bootstrap,
# exact McNemar), and on the tuning split (params `data.tuning`), where a choice between systems is
# made. Static recipes' other calibration seeds and the cross-fitted folds of recipes tuned on the
# reported split are scored too. Writes `runs/<run>/accuracy.json` and one predictions JSONL per system.

# %% tags=["parameters"]
run: str = "standin"  # which params/<run>.yaml to use
quick: bool = False  # unused here: accuracy always uses the whole eval split of the run

# %%
from sst2bench.look import use_report_style

use_report_style()  # tables and figures as in the HTML report

# %%
from sst2bench.config import load_run
from sst2bench.stages.accuracy import recipe_table, stage_accuracy

cfg = load_run(run)

# %%
result = stage_accuracy(cfg)
recipe_table(cfg) if result.done else result.reason
