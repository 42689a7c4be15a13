"""Where a number came from: code version, packages, CPU and its ISA, threads, time."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

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


class Int8Isa(NamedTuple):
    """One class of x86 int8 instructions, for everything that depends on it: the /proc/cpuinfo flag
    that shows it, its name in the report, its kernel class (cache keys, gate baselines), the target
    an ``isa: auto`` recipe gets (``quantization.isa``), and whether its u8 x s8 dot product
    accumulates in 32 bits (VNNI, AMX) instead of VPMADDUBSW's saturating int16."""

    flag: str
    label: str
    isa_class: str
    recipe_target: str
    accumulates_in_32_bits: bool


# Best first: a CPU's class is the first one whose flag it has. AVX-512 VNNI, AVX-VNNI and AMX run
# different kernels (classes), but all accumulate in 32 bits, so AVX-VNNI needs no recipe target of its own.
INT8_ISAS = (
    Int8Isa("amx_int8", "AMX-INT8", "amx", "amx", True),
    Int8Isa("avx512_vnni", "AVX-512 VNNI", "avx512-vnni", "avx512_vnni", True),
    Int8Isa("avx_vnni", "AVX-VNNI", "avx-vnni", "avx512_vnni", True),
    Int8Isa("avx512bw", "AVX-512BW", "avx512", "avx512", False),
    Int8Isa("avx2", "AVX2", "avx2", "avx2", False),
)


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


# /proc/cpuinfo keys that identify a CPU beyond its brand string, and the names cpu_info gives them.
CPU_IDENTITY = {"cpu family": "family", "model": "model_number", "stepping": "stepping"}


def cpu_info() -> dict:
    """CPU model, logical cores and the int8-relevant ISA flags (Linux; elsewhere the model only)."""
    model, flags, identity = platform.processor() or platform.machine(), set(), {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                model = value.strip()
            elif key in CPU_IDENTITY:
                identity[CPU_IDENTITY[key]] = value.strip()
            elif key == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return {
        "model": model,
        # "AMD EPYC" names Zen 3 and Zen 5 alike: family, model number and stepping tell them apart.
        **identity,
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


def best_int8_isa(flags: dict) -> Int8Isa | None:
    """The best int8 instructions ``flags`` (``cpu_info()["isa"]``) show; None below AVX2."""
    return next((isa for isa in INT8_ISAS if flags.get(isa.flag)), None)


def isa_class(cpu: dict | None = None) -> str:
    """The class of int8 instructions ONNX Runtime and PyTorch dispatch to on this CPU.

    AMX, AVX-512 VNNI, AVX-VNNI, AVX-512 without VNNI and AVX2 each run different integer kernels;
    within a class, predictions reproduce exactly.
    """
    best = best_int8_isa((cpu or cpu_info())["isa"])
    return best.isa_class if best else "generic"
