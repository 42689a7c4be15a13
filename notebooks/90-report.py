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

# %% tags=["parameters"]
run: str = "standin"  # which run's results to report
quick: bool = False  # unused: the report only reads JSON

# %%
from IPython.display import Markdown, display

from sst2bench.config import load_run
from sst2bench.look import use_report_style
from sst2bench.noninferiority import noninferiority_notes, noninferiority_table
from sst2bench.paths import project_root
from sst2bench.pipeline import STAGES
from sst2bench.report import (
    RunResults,
    calibration_in_use,
    calibration_study,
    choice_splits,
    cloudflare_summary,
    eval_set_table,
    figure_accuracy,
    figure_confusion,
    figure_latency,
    figure_pareto,
    figure_size,
    figure_op_profile,
    first_screen,
    limit_tables,
    op_profile_table,
    provenance_table,
    published_comparison,
    recommendation,
    recommendation_table,
    show,
    show_disagreements,
    stage_status,
    studies_note,
)

use_report_style()
cfg = load_run(run)
res = RunResults.load(cfg.runs_dir)
rec = recommendation(res, cfg.check)
display(Markdown(f"# sst2bench · `{run}`\n{cfg.description}"))
if studies_note(res):
    display(Markdown(studies_note(res)))

# %%
first_screen(res, rec)

# %% [markdown]
# **Contents** ·
# [Why this recommendation](#Why-this-recommendation) ·
# [Intel's published numbers](#Intel's-published-numbers-beside-this-reproduction) ·
# [Accuracy](#Accuracy) ·
# [Non-inferiority](#Non-inferiority-against-fp32) ·
# [Calibration](#Calibration:-how-much,-and-which-sentences) ·
# [Final split](#The-final-split) ·
# [Accuracy against latency](#Accuracy-against-latency) ·
# [Where the time goes](#Where-the-forward-time-goes) ·
# [Latency](#Latency-distributions) ·
# [Size](#Size-on-disk) ·
# [Confusion matrices](#Confusion-matrices) ·
# [Disagreements](#Where-int8-and-fp32-disagree) ·
# [Other evaluation sets](#Other-evaluation-sets) ·
# [Cloudflare](#Cloudflare-Workers-AI) ·
# [Stages and provenance](#Stages,-timings-and-provenance) ·
# [Appendix](#Appendix:-executed-stage-notebooks)
#
# Every number comes from the JSON the stage notebooks wrote (`runs/<run>/`). Headline columns:
# count with its 95 % interval, the change against fp32 PyTorch in examples (one example is 100/n
# points) with its verdict at the floor's margin and the Holm-corrected McNemar p, agreement with
# fp32, size on disk, p50/p99 at batch 1 on
# one thread, the speed-up against the faster fp32 ONNX Runtime row, and each system's best
# throughput over the sweep with its setting.

# %% [markdown]
# ## Why this recommendation
# Each candidate on the split the choice is made on: it must keep the run's share of fp32's correct
# count (params `check.min_relative_accuracy`) and agree with fp32 on the run's share of examples
# (params `check.min_agreement`); the fastest that does is recommended.

# %%
show(
    recommendation_table(rec, res),
    notes=[f"Where chosen: {rec.chosen_on}. Reported on {rec.reported_on}: the development split, on which the presets were shaped (README)."],
)

# %% [markdown]
# ### Which examples each choice saw
# Accuracy-aware trials score the tuning split's tune part; the recommendation is made on its
# select part, which no trial scored (params `data.tuning.select_fraction`), so a recipe that tuned
# until it passed does not qualify on that evidence.

# %%
show(choice_splits(res, rec))

# %% [markdown]
# ## Intel's published numbers beside this reproduction
# Read from `params/published/intel-distilbert-sst2-int8.yaml`, which cites the model card's URL,
# revision and the date it was read; sizes in MB (10^6 bytes) as Intel prints them.

# %%
show(*published_comparison(res, project_root() / "params" / "published" / "intel-distilbert-sst2-int8.yaml"))

# %% [markdown]
# ## Accuracy

# %%
if res.systems:
    figure_accuracy(res, cfg.check.min_relative_accuracy)

# %% [markdown]
# ## Non-inferiority against fp32
# Each system against fp32 PyTorch on the same examples: the paired difference with its 95 %
# interval (Newcombe's hybrid score), a verdict with the run's floor as the margin, the smallest
# difference this split can detect, and the McNemar p-value, descriptive and Holm-corrected within
# the set.

# %%
if res.accuracy.done:
    display(show(noninferiority_table(res.accuracy.systems), notes=noninferiority_notes(res.accuracy.systems)))

# %% [markdown]
# ## Calibration: how much, and which sentences
# One static recipe recalibrated with each number of sentences, drawn as whole train sentences or
# as any train row (mostly SST's short phrases), each scored on the tuning split's tune part
# beside its fp32 graph (params `quantize.calibration_study`). No choice reads this.

# %%
display(Markdown(calibration_in_use(res)))
study_table, study_figure = calibration_study(res)
if study_table is None:
    display(Markdown(study_figure))
else:
    display(show(study_table))
    display(study_figure)

# %% [markdown]
# ## The final split
# The count no choice was made on. The presets were shaped on the development split (SST-2
# validation, above); INC and the search tuned on the tuning split's tune part, the recommendation
# chose on its select part; the gate's thresholds are params. Only the final stage opened this
# file, after all of them.

# %%
if res.final.done:
    display(Markdown(f"`{res.final.source}` · {res.final.n} examples · sha256 `{res.final.sha256}`"))
    display(show(noninferiority_table(res.final.systems), notes=noninferiority_notes(res.final.systems)))
else:
    display(Markdown(f"Final split not scored: {res.final.reason or 'the final stage has not run'}."))

# %% [markdown]
# ## Accuracy against latency
# Each system is a numbered point named in the legend; the dashed line joins the ones no other point
# beats on both axes.

# %%
if res.latency.done and res.systems:
    figure_pareto(res)
else:
    display(Markdown(f"Latency not measured: {res.latency.reason}"))

# %% [markdown]
# ## The machine's limit
# This CPU's fp32 and int8 matrix-multiply peaks, measured with ONNX Runtime itself, and each
# system's forward pass at batch 1 against them: how much faster it could get, and what stands in the way.

# %%
if res.latency.done:
    for table, notes in limit_tables(res):
        display(show(table, notes=notes))

# %% [markdown]
# ## Where the forward time goes
# Each system's forward pass by kind of op, from its runtime's own profiler (ONNX Runtime's
# profiler, OpenVINO's performance counters, torch.profiler): int8 GEMMs, fp32 GEMMs, attention,
# normalisation and activation, quantize/dequantize, the rest.

# %%
if res.latency.done:
    profile_table, profile_notes = op_profile_table(res)
    if profile_table is not None:
        figure_op_profile(res)
    display(show(profile_table, notes=profile_notes) if profile_table is not None else Markdown(profile_notes[0]))

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
# One row per sentence on which at least one system and fp32 PyTorch predict different labels.

# %%
show_disagreements(res)

# %% [markdown]
# ## Other evaluation sets
# The run's `evaluation_sets` (your own data, out-of-domain reviews): every system scored one
# sentence per call like SST-2, each paired with fp32 PyTorch on the same sentences.

# %%
for name, found in res.accuracy.sets.items():
    display(Markdown(f"### {name}: `{found.source}`" + ("" if found.status == "done" else f" — {found.status}: {found.reason}")))
    if found.status == "done":
        display(show(eval_set_table(res, name)))
        display(show_disagreements(res, found.systems, where=f" of {name}"))
if not res.accuracy.sets:
    display(Markdown("This run has no other evaluation sets (params `evaluation_sets`)."))

# %% [markdown]
# ## Cloudflare Workers AI

# %%
Markdown(cloudflare_summary(res))

# %% [markdown]
# ## Stages, timings and provenance

# %%
display(show(*stage_status(res)))
show(provenance_table(res))

# %% [markdown]
# ## Appendix: executed stage notebooks

# %%
display(Markdown("\n".join(f"- [{s.notebook}](appendix/{s.notebook}.html)" for s in STAGES[:-1])))
