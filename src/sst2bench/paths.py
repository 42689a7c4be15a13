"""Paths a user types are resolved once, at start, against the directory they typed them in.

The pipeline later works from the project root (and papermill kernels start there), so a relative
``SST2_DATA_DIR=../shared/data/sst2`` or ``--data-dir data`` would otherwise be read against
whatever the working directory is by then.
"""

from __future__ import annotations

import os
from pathlib import Path

# Environment variables that name a folder on the user's machine.
USER_PATH_VARIABLES = ("SST2_DATA_DIR",)
# The checkout this package was installed from (editable install): src/sst2bench/ → the root.
CHECKOUT = Path(__file__).resolve().parents[2]


def project_root(start: Path | None = None) -> Path:
    """Where ``params/``, ``models/``, ``runs/`` and ``reports/`` live: the nearest folder at or
    above the current one that holds ``params/``, else the checkout the package came from.

    Every project path is built from it, so no code needs to change directory.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir():
            return folder
    return CHECKOUT


def user_path(value: str | os.PathLike | None) -> Path | None:
    """``value`` as an absolute path against the current directory (``~`` expanded); None stays None."""
    if value is None or str(value) == "":
        return None
    return Path(os.path.abspath(Path(value).expanduser()))


def anchor_user_paths(environ=os.environ) -> None:
    """Make every path-valued environment variable absolute, so later ``chdir``s and child processes
    (papermill kernels, latency workers) read the folder the user meant. Idempotent."""
    for name in USER_PATH_VARIABLES:
        resolved = user_path(environ.get(name))
        if resolved is not None:
            environ[name] = str(resolved)


def size_mib(path: Path) -> float:
    """Size of a file, or of everything in a folder, in MiB."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 2**20, 2)
