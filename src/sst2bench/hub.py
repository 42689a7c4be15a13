"""Hugging Face Hub reachability: code that needs the Hub fails fast with a clear message."""

from __future__ import annotations

import os
from functools import lru_cache

from .errors import MissingPrerequisite

HUB_URL = "https://huggingface.co"


@lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """True when the Hub answers; False offline or with ``HF_HUB_OFFLINE=1`` (no retries, no waiting)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    import httpx

    endpoint = os.environ.get("HF_ENDPOINT", HUB_URL)
    try:
        httpx.head(endpoint, timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return True


def require_hub(what: str) -> None:
    """Raise MissingPrerequisite naming ``what`` when the Hub cannot be reached."""
    if not hub_reachable():
        raise MissingPrerequisite(
            f"{what} needs the Hugging Face Hub, which is unreachable from this machine "
            "(no network or HF_HUB_OFFLINE=1); use a local folder instead"
        )
