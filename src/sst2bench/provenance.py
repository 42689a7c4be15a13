"""Where a number came from: code version, packages, CPU and its ISA, threads, time."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# Libraries whose behaviour is part of an artifact or a prediction: a new version re-makes cached
# artifacts, and the gate's baselines record them.
LIBRARIES = (
    "torch",
    "transformers",
    "tokenizers",
    "optimum",
    "optimum-onnx",
    "onnx",
    "onnxruntime",
    "neural-compressor",
    "openvino",
    "nncf",
    "numpy",
    "datasets",
)
# Everything a result's provenance lists.
PACKAGES = ("sst2bench", *LIBRARIES, "onnx-neural-compressor", "scipy", "scikit-learn", "httpx")
# Instruction-set flags that decide how fast int8 can be (/proc/cpuinfo names).
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def git_commit(repo: Path | None = None) -> str | None:
    """HEAD's commit, suffixed ``-dirty`` when tracked files changed; None outside a checkout."""
    cwd = repo or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_info() -> dict:
    """CPU model, logical cores and the int8-relevant ISA flags (Linux; elsewhere the model only)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return {
        "model": model,
        "logical_cores": os.cpu_count(),
        "isa": {flag: flag in flags for flag in ISA_FLAGS},
    }


def thread_settings() -> dict:
    settings = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    try:
        import torch

        settings["torch_intra_op"] = torch.get_num_threads()
        settings["torch_inter_op"] = torch.get_num_interop_threads()
    except ImportError:  # pragma: no cover - torch is a pinned dependency
        pass
    return settings


def provenance(params: dict | None = None) -> dict:
    """Everything a JSON artifact records about how it was made."""
    return {
        "git_commit": git_commit(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "threads": thread_settings(),
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "params": params or {},
    }


def isa_class(cpu: dict | None = None) -> str:
    """The class of int8 instructions ONNX Runtime and PyTorch dispatch to on this CPU.

    AMX, AVX-512 VNNI, AVX-VNNI, AVX-512 without VNNI and AVX2 each run different integer kernels;
    within a class, predictions reproduce exactly.
    """
    flags = (cpu or cpu_info())["isa"]
    for flag, name in (
        ("amx_int8", "amx"),
        ("avx512_vnni", "avx512-vnni"),
        ("avx_vnni", "avx-vnni"),
        ("avx512bw", "avx512"),
        ("avx2", "avx2"),
    ):
        if flags.get(flag):
            return name
    return "generic"
