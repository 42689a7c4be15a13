"""A local Hugging Face Hub for tests: git repositories served over the Hub's HTTP API by olah.

olah 0.5.4 (PyPI, MIT) answers the Hub API (``/api/models/<id>/revision/<sha>``, ``/resolve/``,
``/api/datasets/...``) from local git repositories laid out as ``<mirrors>/models/<org>/<name>`` and
``<mirrors>/datasets/<org>/<name>`` when its config says ``offline = true``. It needs
huggingface_hub 2.x, which the project's transformers pin forbids, so it runs from its own venv
(``make hub-server`` creates ``.venv-hub``) as a subprocess on a free loopback port. Clients reach
it only through ``HF_ENDPOINT``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .conftest import REPO

HUB_VENV = REPO / ".venv-hub"
OLAH_CLI = HUB_VENV / "bin" / "olah-cli"
MAKE_TARGET = "make hub-server"
HOST = "127.0.0.1"
# Fixed identity and dates, so a repository built from the same files has the same commit sha.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "sst2bench tests",
    "GIT_AUTHOR_EMAIL": "tests@sst2bench.invalid",
    "GIT_COMMITTER_NAME": "sst2bench tests",
    "GIT_COMMITTER_EMAIL": "tests@sst2bench.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def git_repo(mirrors: Path, kind: str, repo_id: str, source: Path, message: str = "upload") -> str:
    """Commit every file under ``source`` into ``<mirrors>/<kind>/<repo_id>`` (branch main); return the commit sha.

    Files go into git as plain blobs (no LFS): olah serves them from the git object store.
    """
    if kind not in ("models", "datasets"):
        raise ValueError(f"kind must be models or datasets, not {kind!r}")
    target = mirrors / kind / repo_id
    if not (target / ".git").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        _git(target, "init", "--quiet", "--initial-branch=main")
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
    _git(target, "add", "--all")
    _git(target, "commit", "--quiet", "--allow-empty", "-m", message)
    return _git(target, "rev-parse", "HEAD")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class HubServer:
    """olah serving ``mirrors`` on a free loopback port; its access log says what clients asked for."""

    def __init__(self, mirrors: Path, workdir: Path):
        self.mirrors = Path(mirrors)
        self.workdir = Path(workdir)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = self.workdir / "olah-access.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> HubServer:
        if not OLAH_CLI.is_file():
            raise RuntimeError(f"{OLAH_CLI} is missing: run `{MAKE_TARGET}` (it creates {HUB_VENV.name}/ with olah, the local Hub server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "{HOST}"\n'
            f"port = {self.port}\n"
            f'repos-path = "{self.workdir / "repos"}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            'mirror-scheme = "http"\n'
            f'mirror-netloc = "{HOST}:{self.port}"\n'
            f'mirror-lfs-netloc = "{HOST}:{self.port}"\n'
            "metadata-cache-ttl = 0\n"
            "[accessibility]\n"
            "offline = true\n"
        )
        log = open(self.log_path, "w")
        # No proxy variables: the server must never try to reach anything but its own mirrors.
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
        env["PYTHONUNBUFFERED"] = "1"  # the access log is read while the server runs
        self.process = subprocess.Popen(
            [str(OLAH_CLI), "--config", str(config), "--log-path", str(self.workdir / "logs")],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
            try:
                httpx.head(self.url + "/api/models/ready/probe", timeout=2.0, trust_env=False)
                return self  # any HTTP answer: it is listening
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"olah did not answer on {self.url} within {timeout_s:.0f} s:\n{self.log_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request in the access log so far."""
        return [(m["method"], m["path"], int(m["status"])) for m in ACCESS_LINE.finditer(self.log_text())]

    def saw(self, path: str, timeout_s: float = 10.0) -> bool:
        """Whether a request for ``path`` reached the log (a line lands just after its response, so wait a little)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if any(seen == path for _, seen, _ in self.requests()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
