"""A remote Workers-AI endpoint (Cloudflare's, or any compatible server such as ``sst2bench serve``)
as a system. Its latency is a network round-trip (``latency="network"`` on its spec), which the
report shows in its own column; accuracy and the gate treat it like any other system."""

from __future__ import annotations

from .base import InferenceConfig, SystemSpec, register_backend


@register_backend("workers-ai")
class WorkersAiBackend:
    """Builds the endpoint's client, reply cache and system from a spec: ``path`` is the model
    name, ``options`` hold ``base_url``, ``requests_per_minute``, ``concurrency`` and ``refresh``.
    Credentials come from the environment or the project's ``.env``, never from the spec."""

    @classmethod
    def from_spec(cls, spec: SystemSpec, inference: InferenceConfig):
        from ..cloudflare.cache import ReplyCache
        from ..cloudflare.client import ClientConfig, WorkersAIClient
        from ..cloudflare.credentials import Credentials
        from ..cloudflare.system import CloudflareSystem
        from ..paths import project_root

        options = dict(spec.options)
        base_url = options.get("base_url") or ClientConfig().base_url
        client = WorkersAIClient(
            Credentials.load(),
            ClientConfig(
                base_url=base_url,
                model=spec.path,
                requests_per_minute=options.get("requests_per_minute", ClientConfig.requests_per_minute),
                concurrency=options.get("concurrency", ClientConfig.concurrency),
            ),
        )
        cache = ReplyCache(project_root() / "data" / "interim" / "cloudflare-replies.sqlite", base_url, spec.path)
        return CloudflareSystem(client, cache, refresh=bool(options.get("refresh", False)))
