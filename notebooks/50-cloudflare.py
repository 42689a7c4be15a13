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
# # 50 · Cloudflare Workers AI
# The live endpoint `@cf/huggingface/distilbert-sst-2-int8` as one more system, when credentials
# are set (`CLOUDFLARE_ACCOUNT_ID`, `CLOUDFLARE_API_TOKEN`, environment or `.env`).
# Writes `runs/<run>/cloudflare.json`, with the reason when it was not measured.

# %% tags=["parameters"]
run: str = "standin"  # which params/<run>.yaml to use
quick: bool = False  # send only a few sentences

# %%
from sst2bench.look import use_report_style

use_report_style()  # tables and figures as in the HTML report

# %%
from sst2bench.config import load_run
from sst2bench.stages.endpoint import stage_endpoint

cfg = load_run(run)

# %%
result = stage_endpoint(cfg, quick=quick)
result.model_dump(exclude={"provenance"})
