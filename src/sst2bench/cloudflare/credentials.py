"""Credentials from the environment or a git-ignored ``.env``; never from params, never printed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MissingPrerequisite

NAMES = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN")


@dataclass(frozen=True)
class Credentials:
    account_id: str
    api_token: str = field(repr=False)  # keeps the token out of reprs, logs and tracebacks

    @classmethod
    def load(cls, env_file: Path | str = ".env") -> "Credentials":
        """The environment wins over ``.env``; a missing value raises MissingPrerequisite naming it."""
        from dotenv import dotenv_values

        values = {k: v for k, v in dotenv_values(env_file).items() if v} if Path(env_file).is_file() else {}
        values.update({name: os.environ[name] for name in NAMES if os.environ.get(name)})
        missing = [name for name in NAMES if not values.get(name)]
        if missing:
            raise MissingPrerequisite(f"not measured: {' and '.join(missing)} not set (environment or .env)")
        return cls(values["CLOUDFLARE_ACCOUNT_ID"], values["CLOUDFLARE_API_TOKEN"])
