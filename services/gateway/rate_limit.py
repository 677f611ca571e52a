"""A token bucket per key (the storefront API's per-store limit in one gateway process)."""

from __future__ import annotations

import time


class TokenBuckets:
    """`rate_per_s` tokens a second up to `burst` per key; rate 0 = no limit. At most
    `max_keys` buckets are kept (all are dropped past that: a flood of made-up keys costs
    memory, never correctness, since a new bucket starts full)."""

    def __init__(self, rate_per_s: float, burst: float, max_keys: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        # key -> [tokens, last refill (monotonic seconds)]
        self._buckets: dict[str, list[float]] = {}

    def allow(self, key: str) -> bool:
        """Take a token from the key's bucket; False when it is empty."""
        rate = self.rate_per_s
        if rate <= 0:
            return True
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()
            self._buckets[key] = [self.burst - 1, now]
            return True
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1
        return True
