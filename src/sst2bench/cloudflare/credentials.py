"""Credentials from the environment or a git-ignored ``.env``; never from params, never printed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MissingPrerequisite
from ..paths import project_root

NAMES = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN")


def setting(name: str, env_file: Path | str | None = None) -> str | None:
    """A Cloudflare setting from the environment, else from the project's git-ignored ``.env``; None when unset."""
    if os.environ.get(name):
        return os.environ[name]
    env_file = env_file or project_root() / ".env"
    if not Path(env_file).is_file():
        return None
    from dotenv import dotenv_values

    return dotenv_values(env_file).get(name) or None


@dataclass(frozen=True)
class Credentials:
    account_id: str
    api_token: str = field(repr=False)  # keeps the token out of reprs, logs and tracebacks

    @classmethod
    def load(cls, env_file: Path | str | None = None) -> Credentials:
        """The environment wins over ``.env``; a missing value raises MissingPrerequisite naming it."""
        values = {name: setting(name, env_file) for name in NAMES}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise MissingPrerequisite(f"not measured: {' and '.join(missing)} not set (environment or .env)")
        return cls(values["CLOUDFLARE_ACCOUNT_ID"], values["CLOUDFLARE_API_TOKEN"])
