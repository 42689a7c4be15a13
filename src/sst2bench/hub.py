"""The Hugging Face Hub: reachability, pinned downloads, and one-line errors when either fails."""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path

from .errors import MissingPrerequisite, UserError

HUB_URL = "https://huggingface.co"
# Written beside a downloaded snapshot: which repository and revision it is.
PINNED = ".pinned-revision"


@lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """True when the Hub answers; False offline or with ``HF_HUB_OFFLINE=1`` (no retries, no waiting)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    import httpx

    try:
        httpx.head(endpoint(), timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return True


def endpoint() -> str:
    """The Hub to use: ``HF_ENDPOINT`` (a mirror, or a local Hub-API server) read now, else huggingface.co.

    huggingface_hub and datasets read ``HF_ENDPOINT`` once, at import; downloads here pass this
    value explicitly, so the Hub that ``hub_reachable`` probed is the Hub that is downloaded from.
    """
    return (os.environ.get("HF_ENDPOINT") or HUB_URL).rstrip("/")


def _one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def download_error(what: str, repo_id: str, revision: str | None, error: BaseException, field: str) -> UserError:
    """A failed Hub download as one line naming the repository, the revision and the params field to fix."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    at = f"{what} {repo_id} at revision {revision or 'main'}"
    if isinstance(error, RevisionNotFoundError):
        reason = "the repository has no such revision"
    elif isinstance(error, RepositoryNotFoundError):
        reason = "repository or revision not found (or it needs a token)"
    else:
        root = error
        while root.__cause__ is not None and root.__cause__ is not root:
            root = root.__cause__
        reason = _one_line(root)
    return UserError(f"{at} could not be downloaded from {endpoint()}: {reason}; check {field} in the run's params")


def require_hub(what: str) -> None:
    """Raise MissingPrerequisite naming ``what`` when the Hub cannot be reached."""
    if not hub_reachable():
        raise MissingPrerequisite(
            f"{what} needs the Hugging Face Hub, which is unreachable from this machine "
            "(no network or HF_HUB_OFFLINE=1); use a local folder instead"
        )


def fetch_snapshot(hub_id: str, revision: str, out_dir: Path, allow_patterns=None, field: str = "model.revision") -> Path:
    """Download a pinned Hub snapshot into ``out_dir`` (fails fast offline).

    A repository or revision the Hub does not have stops with one line naming both (a UserError),
    and ``field`` says which params entry to fix.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    if is_pinned(out_dir, hub_id, revision):
        return out_dir
    require_hub(f"model {hub_id}@{revision}")
    shutil.rmtree(out_dir, ignore_errors=True)  # another revision's files must not linger
    try:
        snapshot_download(hub_id, revision=revision, local_dir=out_dir, allow_patterns=allow_patterns, endpoint=endpoint())
    except HfHubHTTPError as error:  # so are RevisionNotFoundError, RepositoryNotFoundError, LocalEntryNotFoundError
        raise download_error("model", hub_id, revision, error, field) from error
    (Path(out_dir) / PINNED).write_text(f"{hub_id}@{revision}")
    return out_dir


def is_pinned(out_dir: Path, hub_id: str, revision: str) -> bool:
    """Whether ``out_dir`` holds this very repository and revision (a changed pin downloads anew)."""
    marker = Path(out_dir) / PINNED
    return marker.is_file() and marker.read_text() == f"{hub_id}@{revision}"
