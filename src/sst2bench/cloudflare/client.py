"""An httpx client for Workers AI text classification: limiter, bounded retries, clear stops.

Retried with backoff (honouring Retry-After): HTTP 429 and error codes 3021 (rate limited) and
3040 (out of capacity), 5xx, timeouts, malformed or truncated bodies. Stopped at once: 401/403
(token) and 3036 (the day's free allocation is spent). Other 4xx are the request's fault and
are not retried.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from ..errors import UserError
from .credentials import Credentials

RETRYABLE_CODES = {3021: "rate limited", 3040: "out of capacity"}
DAILY_LIMIT_CODE = 3036
LABEL_IDS = {"NEGATIVE": 0, "POSITIVE": 1}


class AuthError(UserError):
    """The token was rejected: nothing more will succeed."""


class DailyLimitReached(UserError):
    """Cloudflare's 3036: the daily free allocation is spent; what was collected is kept."""


class RequestFailed(Exception):
    """One text could not be classified after the allowed retries (or was refused outright)."""


@dataclass(frozen=True)
class ClientConfig:
    base_url: str = "https://api.cloudflare.com/client/v4"
    model: str = "@cf/huggingface/distilbert-sst-2-int8"
    timeout_s: float = 30.0
    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    requests_per_minute: int = 600  # documented limit: 2,000 a minute for text classification
    concurrency: int = 4

    def __post_init__(self):
        if not 0 < self.requests_per_minute <= 2000:
            raise UserError("requests_per_minute must be between 1 and Cloudflare's limit of 2,000")
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout_s <= 0:
            raise UserError("concurrency must be at least 1, max_retries at least 0, timeout_s positive")


class RateLimiter:
    """Spaces request starts at least 60/rpm seconds apart, across threads."""

    def __init__(self, requests_per_minute: int):
        self.interval = 60.0 / requests_per_minute
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


@dataclass(frozen=True)
class Reply:
    result: object
    status: int
    latency_ms: float  # of the attempt that succeeded, network included
    retries: int


def label_scores(result) -> dict[str, float]:
    """``[{"label", "score"}, ...]`` or the older ``{"items": [...]}``, as ``{LABEL: score}``."""
    items = result.get("items") if isinstance(result, dict) else result
    if not isinstance(items, list) or not items:
        raise ValueError(f"unexpected result shape: {str(result)[:200]}")
    scores = {}
    for item in items:
        label = str(item["label"]).upper()
        if label not in LABEL_IDS:
            raise ValueError(f"unexpected label {item['label']!r}")
        scores[label] = float(item["score"])
    return scores


def _error_codes(response: httpx.Response) -> set[int]:
    try:
        return {int(e.get("code")) for e in response.json().get("errors", []) if isinstance(e, dict) and e.get("code") is not None}
    except (ValueError, AttributeError, TypeError):
        return set()


class WorkersAIClient:
    def __init__(self, credentials: Credentials, config: ClientConfig | None = None, transport: httpx.BaseTransport | None = None):
        self.config = config or ClientConfig()
        self.url = f"{self.config.base_url.rstrip('/')}/accounts/{credentials.account_id}/ai/run/{self.config.model}"
        limits = httpx.Limits(max_connections=self.config.concurrency, max_keepalive_connections=self.config.concurrency)
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {credentials.api_token}"}, timeout=self.config.timeout_s, limits=limits, transport=transport
        )
        self.limiter = RateLimiter(self.config.requests_per_minute)

    def close(self) -> None:
        self._http.close()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None and response.headers.get("Retry-After", "").strip().replace(".", "", 1).isdigit():
            return min(float(response.headers["Retry-After"]), self.config.max_backoff_s)
        return min(self.config.backoff_s * 2**attempt, self.config.max_backoff_s)

    def classify(self, text: str) -> Reply:
        if not text.strip():
            raise RequestFailed("empty text: the endpoint needs at least one character")
        problem = ""
        for attempt in range(self.config.max_retries + 1):
            self.limiter.wait()
            started = time.perf_counter()
            response = None
            try:
                response = self._http.post(self.url, json={"text": text})
                latency_ms = (time.perf_counter() - started) * 1000
                if response.status_code == 200:
                    body = response.json()
                    if body.get("success") is False:
                        raise ValueError(f"success=false: {body.get('errors')}")
                    label_scores(body["result"])
                    return Reply(body["result"], 200, latency_ms, attempt)
            except (httpx.TimeoutException, httpx.TransportError) as error:
                problem = f"{type(error).__name__}"
            except (ValueError, KeyError, TypeError) as error:  # malformed or truncated JSON, wrong shape
                problem = f"malformed reply ({error})"[:200]
            if response is not None and response.status_code != 200:
                codes = _error_codes(response)
                if response.status_code in (401, 403):
                    raise AuthError(
                        f"Cloudflare refused the API token (HTTP {response.status_code}); check CLOUDFLARE_API_TOKEN and that it may use Workers AI"
                    )
                if DAILY_LIMIT_CODE in codes:
                    raise DailyLimitReached(
                        "Cloudflare error 3036: today's free Workers AI allocation is spent; replies so far are kept, rerun tomorrow"
                    )
                retryable = response.status_code == 429 or response.status_code >= 500 or codes & set(RETRYABLE_CODES)
                problem = f"HTTP {response.status_code} {sorted(codes) or ''}".strip()
                if not retryable:
                    raise RequestFailed(f"{problem}: not retried")
            if attempt < self.config.max_retries:
                time.sleep(self._delay(attempt, response if response is not None and response.status_code != 200 else None))
        raise RequestFailed(f"gave up after {self.config.max_retries + 1} attempts: {problem}")
