"""`make lab`'s settings, read back from a running JupyterLab: each notebook listed once, `.py`
opened as a notebook, no news or announcement pop-up."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import REPO

TOKEN = "lab-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    """JupyterLab started as `make lab` starts it (the Makefile's LAB_ENV and the notebooks folder)."""
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(REPO / "jupyter")}
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", f"--notebook-dir={REPO / 'notebooks'}", "--ip=127.0.0.1"]
    command += ["--no-browser", f"--port={port}", f"--IdentityProvider.token={TOKEN}", "--allow-root"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def get(path):
        with urllib.request.urlopen(f"{base}{path}{'&' if '?' in path else '?'}token={TOKEN}", timeout=10) as reply:
            return reply.read().decode()

    try:
        for _ in range(120):
            try:
                get("/api/status")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start in 60 s")
        yield get
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_makefile_starts_lab_with_the_project_settings():
    assert "JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter" in (REPO / "Makefile").read_text()


def test_each_notebook_is_listed_once_as_its_py(lab):
    names = sorted(item["name"] for item in json.loads(lab("/api/contents/"))["content"])
    stages = sorted(p.name for p in (REPO / "notebooks").glob("*.py"))
    assert stages and [n for n in names if n.endswith((".py", ".ipynb"))] == stages
    assert (REPO / "notebooks" / stages[0]).with_suffix(".ipynb").is_file()  # the pairs are still there, only hidden


def test_py_opens_as_a_notebook_and_no_news_or_announcements(lab):
    def default(plugin, key):
        return json.loads(lab(f"/lab/api/settings/{plugin}"))["schema"]["properties"][key]["default"]

    assert default("@jupyterlab/docmanager-extension:plugin", "defaultViewers") == {"python": "Jupytext Notebook"}
    assert default("@jupyterlab/apputils-extension:notification", "fetchNews") == "false"
    assert default("@jupyterlab/apputils-extension:notification", "checkForUpdates") is False
    assert '"@jupyterlab/apputils-extension:announcements"' in lab("/lab").split("disabledExtensions", 1)[1][:500]
