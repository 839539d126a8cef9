"""Who may send events: write keys, public keys with an Origin allowlist, CORS, rate limits.

- Server clients send a secret **write key** as ``Authorization: Bearer <key>``; it is
  compared in constant time, and such requests are not rate limited.
- Browsers send a **public key** in the batch (``{"key": ..., "batch": [...]}``: a beacon
  cannot set headers), accepted only from an allowed ``Origin``.
- CORS headers go only to allowed origins; preflight requests are answered.
- Every other request is rate limited per client IP by a token bucket (429, Retry-After).

With no key configured at all, the collector is open: fine on a laptop, not in production.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Collection, Mapping
from typing import Final

import cachetools

__all__ = ["RateLimiter", "bearer_key", "cors_headers", "matches_any", "preflight_headers"]

PREFLIGHT_MAX_AGE: Final = "86400"


def matches_any(key: str | None, keys: Collection[str]) -> bool:
    """Whether ``key`` is one of ``keys``, comparing in constant time (no early exit)."""
    if not key or not keys:
        return False
    found = False
    for candidate in keys:
        found |= hmac.compare_digest(key.encode("utf-8"), candidate.encode("utf-8"))
    return found


def bearer_key(headers: Mapping[str, str]) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, if there is one."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def cors_headers(origin: str | None, allowed: Collection[str]) -> tuple[tuple[str, str], ...]:
    """CORS headers for a response to ``origin``: none unless the origin is allowed."""
    if not origin or origin not in allowed:
        return (("Vary", "Origin"),)
    return (
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Expose-Headers", "Retry-After"),
        ("Vary", "Origin"),
    )


def preflight_headers(
    origin: str | None, allowed: Collection[str], methods: str = "POST, OPTIONS"
) -> tuple[tuple[str, str], ...]:
    """Headers answering a CORS preflight (OPTIONS) request, beside :func:`cors_headers`."""
    headers: list[tuple[str, str]] = []
    if origin and origin in allowed:
        headers += [
            ("Access-Control-Allow-Methods", methods),
            ("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Authorization"),
            ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
        ]
    return tuple(headers)


class RateLimiter:
    """A token bucket per client: ``rate`` requests a second on average, ``burst`` at once.

    Memory is bounded: at most ``max_clients`` buckets are kept, idle ones expire.
    """

    def __init__(self, rate: float, burst: int, *, max_clients: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        idle = max(burst / rate, 1.0) if rate > 0 else 60.0
        self._buckets: cachetools.TTLCache[str, tuple[float, float]] = cachetools.TTLCache(
            maxsize=max_clients, ttl=idle
        )
        self._lock = threading.Lock()  # cachetools is not thread-safe

    def acquire(self, client: str) -> float:
        """Take a token for ``client``; return 0, or the seconds to wait before retrying."""
        now = time.monotonic()
        with self._lock:
            tokens, since = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - since) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate if self.rate > 0 else math.inf
