"""Every reply on disk (SQLite): a rerun costs nothing and an interrupted run resumes.

Rows are keyed by endpoint, model and the text's sha256, so a local server's replies never stand
in for Cloudflare's, and a text is never sent or counted twice. Each reply is committed as it
arrives.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..cache import digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    text TEXT NOT NULL,
    raw TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    retries INTEGER NOT NULL,
    collected_at REAL NOT NULL,
    PRIMARY KEY (endpoint, model, text_sha256)
)
"""


def text_hash(text: str) -> str:
    """A reply's key: the sha256 of its text's UTF-8 bytes."""
    return digest(text.encode("utf-8"))


@dataclass(frozen=True)
class CachedReply:
    text: str
    result: object
    status: int
    latency_ms: float
    retries: int
    collected_at: float


class ReplyCache:
    def __init__(self, path: Path | str, endpoint: str, model: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.endpoint, self.model = endpoint, model
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute(SCHEMA)
        self._db.commit()

    def get(self, text: str) -> CachedReply | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, raw, status, latency_ms, retries, collected_at FROM replies WHERE endpoint=? AND model=? AND text_sha256=?",
                (self.endpoint, self.model, text_hash(text)),
            ).fetchone()
        return CachedReply(row[0], json.loads(row[1]), *row[2:]) if row else None

    def put(self, text: str, result: object, status: int, latency_ms: float, retries: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.endpoint, self.model, text_hash(text), text, json.dumps(result), status, latency_ms, retries, time.time()),
            )
            self._db.commit()

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM replies WHERE endpoint=? AND model=?", (self.endpoint, self.model)).fetchone()[0]

    def close(self) -> None:
        self._db.close()
