"""Per-key rate limits: one public DSN key cannot push every other tenant into 429.

A moving window per key (the `limits` library, in memory: each ingest process keeps its
own), charged one unit per profile item, so an envelope of many chunks costs what it adds.
"""

from __future__ import annotations

import math
import time

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class KeyRateLimit:
    def __init__(self, spec: str) -> None:
        """`spec` in the library's notation: "100/second", "5000/hour", "10 per minute"."""
        try:
            self._limit = limits.parse(spec)
        except ValueError as e:
            raise ValueError(f"key_rate_limit {spec!r} is not a rate such as '100/second': {e}") from None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def admit(self, public_key: str, cost: int) -> int | None:
        """None if the key may send `cost` more items now, else the seconds until it may."""
        if cost <= 0 or self._limiter.hit(self._limit, public_key, cost=cost):
            return None
        reset = self._limiter.get_window_stats(self._limit, public_key).reset_time
        return max(1, math.ceil(reset - time.time()))
