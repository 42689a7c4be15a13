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
# # sst2bench report
# What int8 quantization costs and buys for this run's SST-2 classifier. Every number below comes
# from the JSON the stage notebooks wrote (`runs/<run>/`); the executed stage notebooks are linked
# at the end.

# %% tags=["parameters"]
run: str = "standin"  # which run's results to report
quick: bool = False  # unused: the report only reads JSON

# %%
from IPython.display import Markdown, display

from sst2bench.config import load_run
from sst2bench.paths import project_root
from sst2bench.pipeline import STAGES
from sst2bench.report import (
    RunResults,
    cloudflare_summary,
    disagreements_table,
    eval_set_table,
    figure_accuracy,
    figure_confusion,
    figure_latency,
    figure_pareto,
    figure_size,
    headline_table,
    provenance_table,
    published_comparison,
    stage_status,
)

cfg = load_run(run)
res = RunResults.load(cfg.runs_dir)
display(Markdown(f"**Run `{run}`** — {cfg.description}"))

# %% [markdown]
# ## Headline
# Accuracy with its count and 95 % bootstrap interval, the change against fp32 PyTorch in examples
# (one example is 100/n points, n the examples scored) with the exact McNemar p, size on disk, p50/p99
# latency at batch 1 on one thread, and throughput at the largest batch.

# %%
headline_table(res)

# %% [markdown]
# ## Intel's published numbers beside this reproduction
# Read from `params/published/intel-distilbert-sst2-int8.yaml`, which cites the model card's URL,
# revision and the date it was read; sizes in MB (10^6 bytes) as Intel prints them.

# %%
published_comparison(res, project_root() / "params" / "published" / "intel-distilbert-sst2-int8.yaml")

# %% [markdown]
# ## Accuracy

# %%
if res.systems:
    figure_accuracy(res, cfg.check.min_relative_accuracy)

# %% [markdown]
# ## Accuracy against latency
# Each recipe is a point; the dashed line joins the ones no other point beats on both axes.

# %%
if res.latency.done and res.systems:
    figure_pareto(res)
else:
    display(Markdown(f"Latency not measured: {res.latency.reason}"))

# %% [markdown]
# ## Latency distributions

# %%
if res.latency.done:
    figure_latency(res)

# %% [markdown]
# ## Size on disk

# %%
if res.systems:
    figure_size(res)

# %% [markdown]
# ## Confusion matrices

# %%
if res.systems:
    figure_confusion(res)

# %% [markdown]
# ## Where int8 and fp32 disagree
# For each int8 system, the validation sentences on which it and fp32 PyTorch predict different
# labels, with both probabilities.

# %%
for name, result in res.systems.items():
    if result.family == "int8":
        table = disagreements_table(res, name)
        display(Markdown(f"### {name}: {len(table)} disagreement(s)"))
        if len(table):
            display(table)

# %% [markdown]
# ## Other evaluation sets
# The run's `evaluation_sets` (your own data, out-of-domain reviews): every system scored one
# sentence per call like SST-2, each paired with fp32 PyTorch on the same sentences.

# %%
for name, found in res.accuracy.sets.items():
    display(Markdown(f"### {name}: `{found.source}`" + ("" if found.status == "done" else f" — {found.status}: {found.reason}")))
    if found.status == "done":
        display(eval_set_table(res, name))
if not res.accuracy.sets:
    display(Markdown("This run has no other evaluation sets (params `evaluation_sets`)."))

# %% [markdown]
# ## Cloudflare Workers AI

# %%
Markdown(cloudflare_summary(res))

# %% [markdown]
# ## Provenance and stages

# %%
display(stage_status(res))
provenance_table(res)

# %% [markdown]
# ## Appendix: executed stage notebooks

# %%
display(Markdown("\n".join(f"- [{s.notebook}](appendix/{s.notebook}.html)" for s in STAGES[:-1])))
