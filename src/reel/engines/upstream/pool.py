"""Which server of an upstream takes the next job.

Servers whose breaker is open or that asked us to wait (429) are left out. Where the API lists
jobs (OpenAI-compatible servers), each remaining server is asked how many jobs it has queued or
running, and the least loaded one below ``per_server`` is chosen (ties at random, so workers
choosing at the same moment spread out). The count comes from the servers themselves, so it
holds across worker processes and machines; two workers choosing in the same instant may still
both pick one server, which then queues the second job.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from reel.engines.upstream.client import CallFailed, UpstreamClient
from reel.engines.upstream.health import Health
from reel.engines.upstream.providers.base import NotSupported, Provider

log = logging.getLogger("reel.engines.upstream")


@dataclass(frozen=True, slots=True)
class Choice:
    #: The chosen server, or ``None`` when none can take a job now.
    server: str | None
    #: Every available server is at ``per_server`` jobs.
    busy: bool = False


def choose_server(
    client: UpstreamClient,
    provider: Provider,
    health: Health,
    *,
    exclude: set[str] | frozenset[str] = frozenset(),
    rng: random.Random,
) -> Choice:
    """Pick a server, leaving out ``exclude`` (servers that already failed this task)."""
    spec = client.spec
    ready = [s for s in spec.pool if s not in exclude and health.available(s)]
    if not ready:
        return Choice(None)
    if not provider.probes_load:
        return Choice(rng.choice(ready))
    loads: dict[str, int] = {}
    for server in ready:
        try:
            loads[server] = provider.active_jobs(client, server)
        except NotSupported:
            loads[server] = 0
        except CallFailed as exc:
            if exc.status in (404, 405, 501):  # the server keeps no job list: load unknown
                loads[server] = 0
                continue
            log.warning("upstream %s: %s does not answer: %s", spec.name, server, exc.detail)
            health.failure(server)
    if not loads:
        return Choice(None)
    least = min(loads.values())
    if least >= spec.per_server:
        return Choice(None, busy=True)
    return Choice(rng.choice([s for s, n in loads.items() if n == least]))
