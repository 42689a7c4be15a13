"""The endpoint as a System: cached replies first, missing texts sent with bounded concurrency."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from ..systems import Prediction
from .cache import ReplyCache
from .client import LABEL_IDS, AuthError, DailyLimitReached, WorkersAIClient, label_scores

NAME = "cloudflare-workers-ai"
# Cloudflare's published price for the model, with its source and the date it was read.
PRICING_FILE = "params/published/cloudflare-workers-ai-pricing.yaml"


def prediction_from(result) -> Prediction:
    """Highest score wins, whatever the order of the list."""
    scores = label_scores(result)
    positive = scores.get("POSITIVE", 1.0 - scores.get("NEGATIVE", 0.5))
    negative = scores.get("NEGATIVE", 1.0 - positive)
    total = positive + negative
    probabilities = (negative / total, positive / total)
    label = LABEL_IDS[max(scores, key=scores.get)]
    return Prediction(label, probabilities[label], probabilities)


@dataclass
class Usage:
    sent: int = 0
    cached: int = 0
    retries: int = 0

    def __str__(self) -> str:
        """The progress bar's note: what this run sent and took from the cache so far."""
        return f"sent {self.sent}, cached {self.cached}, retries {self.retries}"


class CloudflareSystem:
    name = NAME
    id2label = {0: "NEGATIVE", 1: "POSITIVE"}

    def __init__(self, client: WorkersAIClient, cache: ReplyCache, refresh: bool = False):
        self.client, self.cache, self.refresh = client, cache, refresh
        self.usage = Usage()
        self._refreshed: set[str] = set()
        self._stop = threading.Event()

    def _fetch(self, text: str) -> None:
        if self._stop.is_set():  # a refused token or a spent allocation: send nothing more
            return
        try:
            reply = self.client.classify(text)
        except (AuthError, DailyLimitReached):
            self._stop.set()
            raise
        self.cache.put(text, reply.result, reply.status, reply.latency_ms, reply.retries)
        self.usage.sent += 1
        self.usage.retries += reply.retries

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        unique = list(dict.fromkeys(texts))
        missing = [t for t in unique if self.cache.get(t) is None or (self.refresh and t not in self._refreshed)]
        self.usage.cached += len(unique) - len(missing)
        if missing:
            self._stop.clear()
            with ThreadPoolExecutor(max_workers=self.client.config.concurrency) as pool:
                futures = [pool.submit(self._fetch, text) for text in missing]
                done, pending = wait(futures, return_when=FIRST_EXCEPTION)
                for future in pending:
                    future.cancel()
                for future in done:
                    if future.exception():
                        raise future.exception()
            self._refreshed.update(missing)
        return [prediction_from(self.cache.get(t).result) for t in texts]


def pricing() -> dict:
    import yaml

    from ..paths import project_root

    return yaml.safe_load((project_root() / PRICING_FILE).read_text())


def estimate_cost(texts: Sequence[str], tokenizer) -> dict:
    """An estimate (the endpoint reports no usage): input tokens counted with the model's tokenizer,
    at the published price, in dollars and neurons, with the price's source and the date it was read."""
    price = pricing()
    tokens = sum(len(ids) for ids in tokenizer(list(texts), truncation=False)["input_ids"]) if texts else 0
    dollars = tokens * price["dollars_per_million_input_tokens"] / 1e6
    neurons = dollars / price["dollars_per_thousand_neurons"] * 1000
    return {
        "requests": len(texts),
        "input_tokens": tokens,
        "dollars": round(dollars, 6),
        "neurons": round(neurons, 1),
        "share_of_daily_free_neurons": round(neurons / price["free_neurons_per_day"], 4),
        "estimate": True,
        "price_source": price["source"]["url"],
        "price_read_on": str(price["source"]["read_on"]),
    }
