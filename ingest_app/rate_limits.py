"""Per-client-IP and per-project-hash rate limits: token buckets in a table of bounded size.

Per collector instance (each worker process keeps its own table): enough to stop one client or
one leaked project hash from taking an instance's whole capacity. The production equivalent for
the fleet sits in front of Cloud Run (a load balancer with Cloud Armor rate-based rules; see
docs/security.md).

Why not a library: `limits` (the one behind Flask-Limiter) keeps its in-memory counters in
dictionaries with no bound on the number of keys (expired ones are swept later), and the
collector needs a bound in bytes whatever clients send. This is a token bucket (refill `rate`
per second up to `burst`) per key in an LRU of at most `capacity` keys: one dictionary look-up
and a little arithmetic under a lock per check. Forgetting the least recently seen key only ever
gives that key a full bucket again, so an attacker gains nothing it could not get with that many
addresses anyway.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from deactivation.settings import Settings
from ingest_app.errors import ApiError

#: Keys are cut to this many characters (an IPv6 address has at most 45), so that the table's
#: size in bytes is bounded even when a misconfigured proxy hop lets a client choose its address.
MAX_KEY_CHARS = 64


class TokenBuckets:
    """One token bucket per key; at most `capacity` keys are remembered."""

    def __init__(
        self, rate: float, burst: int, capacity: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # key -> [tokens, updated at]
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token for `key`: 0.0 if there was one, else the seconds until there is."""
        key = key[:MAX_KEY_CHARS]
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.capacity:
                    self._buckets.popitem(last=False)
                bucket = self._buckets[key] = [self.burst, now]
            else:
                self._buckets.move_to_end(key)
            tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimits:
    """The collector's two limits; a limit whose rate is 0 is off."""

    def __init__(self, settings: Settings) -> None:
        capacity = settings.INGEST_RATE_TABLE_SIZE
        self.per_client = (
            TokenBuckets(settings.INGEST_RATE_PER_IP, settings.INGEST_BURST_PER_IP, capacity)
            if settings.INGEST_RATE_PER_IP > 0
            else None
        )
        self.per_project = (
            TokenBuckets(settings.INGEST_RATE_PER_PROJECT, settings.INGEST_BURST_PER_PROJECT, capacity)
            if settings.INGEST_RATE_PER_PROJECT > 0
            else None
        )

    def check_client(self, remote_addr: str | None) -> None:
        """Raise the 429 if this client address sent more than its share.

        Loopback clients are not limited: they run on this machine (the demo, benchmarks, a local
        proxy). A local proxy left without INGEST_PROXY_HOPS thus disables the per-client limit
        instead of making every client share one bucket; the per-project limit still holds.
        """
        if remote_addr and (remote_addr.startswith("127.") or remote_addr == "::1"):
            return
        if self.per_client is not None:
            wait = self.per_client.take(remote_addr or "")
            if wait:
                raise rate_limited("client", wait)

    def check_project(self, project_hash: str) -> None:
        """Raise the 429 if this project hash was sent more than its share."""
        if self.per_project is not None:
            wait = self.per_project.take(project_hash)
            if wait:
                raise rate_limited("project", wait)


def rate_limited(scope: str, wait_s: float) -> ApiError:
    retry_after = max(1, math.ceil(wait_s))
    return ApiError(
        429,
        "rate_limited",
        f"too many requests for this {scope}; retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
        limit=scope,
        retry_after=retry_after,
    )
