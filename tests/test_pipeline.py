"""The papermill pipeline end to end on a tiny local model: stages, cache, report, browser check."""

import os
import re
import shutil
import subprocess

import pytest

from sst2bench.pipeline import report, run_stages

from .conftest import REPO

TINY_RUN = """
description: tiny local model, for the pipeline test
model: {{kind: local, path: "{model}"}}
data: {{eval_limit: 40, tuning: {{size: 60}}}}
quantize: {{recipes: [ort-dynamic]}}
inference: {{batch_size: 16, threads: 1}}
latency: {{batch_sizes: [1, 2], paddings: [dynamic], threads: [1], samples: 4, warmup: 1, iterations: {iterations}, duration_s: 1.0}}
cloudflare: {{enabled: false}}
"""
HUB_RUN = "model: {kind: hub, hub_id: distilbert/distilbert-base-uncased-finetuned-sst-2-english}\n"


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir, sst2_dir):
    """One project for this module's tests, which run in file order: the first makes the tiny run's
    stages and checks what reruns, the next report from its cache (one pipeline run, not one each)."""
    from sst2bench import hub

    root = tmp_path_factory.mktemp("workspace")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    shutil.copytree(REPO / "params" / "published", root / "params" / "published")
    (root / "params" / "tiny.yaml").write_text(TINY_RUN.format(model=tiny_model_dir, iterations=3))
    (root / "params" / "hub.yaml").write_text(HUB_RUN)
    with pytest.MonkeyPatch.context() as patch:
        # The user types a relative SST2_DATA_DIR in a folder of the checkout other than its root,
        # as README's `export SST2_DATA_DIR=../shared/data/sst2` is typed: the pipeline must still find it.
        typed_in = root / "notebooks"
        patch.chdir(typed_in)
        patch.setenv("SST2_DATA_DIR", os.path.relpath(sst2_dir, typed_in))
        patch.setenv("HF_HUB_OFFLINE", "1")  # the Hub unreachable, as on this machine (see conftest.offline_hub)
        hub.hub_reachable.cache_clear()
        yield root
    hub.hub_reachable.cache_clear()


def test_pipeline_caches_reruns_what_changed_and_reports(workspace):
    lines = []
    first = run_stages("tiny", echo=lines.append)
    assert {name: s["status"] for name, s in first.items()} == {
        "model": "done",
        "quantize": "done",
        "accuracy": "done",
        "latency": "done",
        "cloudflare": "skipped",
        "final": "skipped",  # the tiny run names no final test split
        "report": "done",
    }
    timings = [line for line in lines if line.endswith(" s")]
    assert len(timings) == 7 and all(line.startswith("[tiny]") for line in lines)
    assert len(lines) == 14  # each stage says when it starts, so its streamed progress has a name
    assert (workspace / "runs" / "tiny" / "notebooks" / "30-accuracy.ipynb").is_file()

    second = run_stages("tiny", echo=lambda line: None)
    assert all(s["status"] == "cached" for s in second.values()), second

    params = workspace / "params" / "tiny.yaml"
    params.write_text(params.read_text().replace("iterations: 3", "iterations: 4"))
    third = run_stages("tiny", echo=lambda line: None)
    rerun = {name for name, s in third.items() if s["status"] != "cached"}
    assert rerun == {"latency", "report"}


def test_report_index_and_browser_render(workspace):
    statuses = report(["tiny", "hub"], echo=lambda line: None)
    assert statuses["tiny"]["status"] == "done"
    assert statuses["hub"]["status"] == "skipped" and "Hugging Face Hub" in statuses["hub"]["reason"]
    index = (workspace / "reports" / "index.html").read_text()
    assert 'href="tiny/index.html"' in index and "skipped" in index and "Hugging Face Hub" in index

    page = workspace / "reports" / "tiny" / "index.html"
    html = page.read_text()
    assert html.count("data:image/png;base64") >= 5  # accuracy, Pareto, latency, size, confusion: embedded
    assert "fp32-torch" in html and "ort-dynamic" in html and "Not measured" in html
    assert "Where the forward time goes" in html and "int8 GEMM (%)" in html and "int8 GEMMs take" in html  # measured profiles
    assert "def " not in html and "import " not in html  # no code in the report
    assert (workspace / "reports" / "tiny" / "appendix" / "30-accuracy.html").is_file()

    browser = chromium()
    if browser is None:
        pytest.fail("Chromium is needed to check the report in a browser: apt-get install chromium (.ci/run does)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={workspace / 'chrome'}",
    ]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<table") >= 3 and dom.count("<img") >= 5
    # What a reader sees: no figures' base64, no style or script.
    text = re.sub(r'src="data:[^"]*"|<style.*?</style>|<script.*?</script>', "", dom, flags=re.S)
    assert "NaN" not in text and ">None<" not in text
    # The answer comes first: the recommendation and the headline table before the contents and any figure.
    answer, contents, first_figure = text.find("sst2bench-answer"), text.find("<strong>Contents</strong>"), text.find("<img")
    assert 0 < answer < text.find('class="sst2bench sortable"') < contents < first_figure
    assert "Recommendation." in text and re.search(r"int8 class (avx2|avx512|avx512-vnni|avx-vnni|amx)\b", text)
    # The sorting script ran in the browser: every header of every sortable table announces it.
    headers = re.findall(r"<table class=\"sst2bench sortable\"><thead><tr>(.*?)</tr>", text)
    assert len(headers) >= 4 and all(h.count("<th") == h.count('aria-sort="none"') for h in headers)
    assert "<details>" in text or "agrees with fp32 on every example" in text  # the disagreement matrix, collapsed

    shot = workspace / "report.png"
    subprocess.run([browser, *flags, "--window-size=1280,800", f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
    # On the first screen (1280 × 800): the recommendation box, found by its orange edge.
    from PIL import Image

    pixels = Image.open(shot).convert("RGB")
    edge = sum(pixels.getpixel((x, y)) == (0xE6, 0x7E, 0x22) for x in range(0, 80) for y in range(0, 800, 4))
    assert edge > 20, "the recommendation is not on the first screen"


def test_a_skipped_stage_reruns_once_its_prerequisite_appears(monkeypatch, tmp_path):
    from sst2bench.config import run_config_from_dict
    from sst2bench.pipeline import STAGES, stage_key

    monkeypatch.chdir(tmp_path)
    for name in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    cfg = run_config_from_dict({"run": "x"})
    cloudflare = next(s for s in STAGES if s.name == "cloudflare")
    without = stage_key(cloudflare, cfg, REPO)
    assert stage_key(cloudflare, cfg, REPO) == without
    (tmp_path / "params").mkdir()  # the project root, whose .env the settings are read from
    (tmp_path / ".env").write_text("CLOUDFLARE_ACCOUNT_ID=a\nCLOUDFLARE_API_TOKEN=b\n")
    assert stage_key(cloudflare, cfg, REPO) != without


RESUME_RUN = """
model: {{kind: local, path: "{model}"}}
data: {{eval_limit: 12, tuning: {{size: 24}}}}
quantize: {{recipes: []}}
inference: {{batch_size: 1, threads: 1}}
latency: {{batch_sizes: [1], paddings: [dynamic], threads: [1], samples: 2, warmup: 0, iterations: 2, duration_s: 1.0}}
cloudflare: {{enabled: true, requests_per_minute: 2000, concurrency: 1}}
"""


def test_a_cloudflare_stage_stopped_by_the_daily_limit_resumes_on_the_next_report(workspace, tiny_model_dir, httpserver, monkeypatch):
    from .test_cloudflare import ACCOUNT, OK, TOKEN, error, scripted

    quota = {"left": 5}

    def daily_allocation(request):
        if quota["left"] == 0:
            return error(3036)
        quota["left"] -= 1
        return OK

    seen = scripted(httpserver, [daily_allocation])
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", httpserver.url_for("/client/v4"))
    (workspace / "params" / "resume.yaml").write_text(RESUME_RUN.format(model=tiny_model_dir))

    first = run_stages("resume", echo=lambda line: None)
    assert first["cloudflare"]["status"] == "partial"
    assert len(seen) == 6  # five answered, the sixth refused with 3036
    quota["left"] = 100  # the next day

    second = run_stages("resume", echo=lambda line: None)
    assert second["cloudflare"]["status"] == "done"
    assert {second[name]["status"] for name in ("model", "quantize", "accuracy", "latency")} == {"cached"}, second
    resent = [body["text"] for body in seen[6:]]
    answered_before = {body["text"] for body in seen[:5]}
    assert len(resent) == 12 - 5 and not answered_before & set(resent)  # only what was missing

    third = run_stages("resume", echo=lambda line: None)
    assert third["cloudflare"]["status"] == "cached" and len(seen) == 6 + 7
