"""Send-rate limits: a token bucket per key (chat, channel) plus one per platform."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` sustained, ``burst`` at once."""

    per_second: float
    burst: float = 1.0


class TokenBucket:
    def __init__(self, rate: Rate, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._tokens = rate.burst
        self._monotonic = monotonic
        self._stamp = monotonic()

    def _refill(self) -> None:
        now = self._monotonic()
        if now <= self._stamp:  # paused: nothing flows in before the pause ends
            return
        self._tokens = min(
            self.rate.burst, self._tokens + (now - self._stamp) * self.rate.per_second
        )
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until one token is there (0 when available now)."""
        self._refill()
        if self._tokens >= 1:
            return 0.0
        now = self._monotonic()
        return max(self._stamp - now, 0.0) + (1 - self._tokens) / self.rate.per_second

    def pause(self, seconds: float) -> None:
        """Nothing for ``seconds``; then the bucket fills from empty, so sending resumes at
        the sustained rate rather than in a burst."""
        until = self._monotonic() + seconds
        if until > self._stamp:
            self._refill()
            self._tokens = min(self._tokens, 0.0)
            self._stamp = until

    def take(self) -> None:
        self._refill()
        self._tokens -= 1


class RateLimiter:
    """Limits for one channel: ``per_address`` (e.g. 1/s per chat) and ``overall`` (30/s).

    ``acquire(address)`` waits until both buckets allow one message. One process only: with
    several delivery processes, divide the overall rate between them. ``rate_of`` gives some
    addresses a rate of their own (Telegram groups: 20 a minute), else ``per_address`` holds.
    """

    def __init__(
        self,
        per_address: Rate | None = None,
        overall: Rate | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rate_of: Callable[[str], Rate | None] | None = None,
    ) -> None:
        self.per_address = per_address
        self.rate_of = rate_of
        self.overall = overall
        self._monotonic = monotonic
        self._buckets: dict[str, TokenBucket] = {}
        self._global = TokenBucket(overall, monotonic) if overall else None
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self._share = 1

    def share(self, processes: int) -> None:
        """``processes`` send to the same platform (scale-out): this one keeps to 1/n of the
        rates and bursts, so that together they keep to the limits."""
        n = max(processes, 1)
        if n == self._share:
            return
        self._share = n
        if self.overall is not None:
            self._global = TokenBucket(self._scaled(self.overall), self._monotonic)
        self._buckets.clear()

    def _scaled(self, rate: Rate) -> Rate:
        n = self._share
        return Rate(rate.per_second / n, burst=max(1.0, rate.burst / n))

    def pause(self, seconds: float) -> None:
        """The platform said "too many requests, retry after ``seconds``": its limit is the
        whole channel's (Telegram's 30/s, Slack's per method and workspace), so no message
        of this channel goes out before then, and afterwards they resume at the limit rate."""
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)
        if self._global is not None:
            self._global.pause(seconds)

    @property
    def paused_for(self) -> float:
        """Seconds left of a pause (0 when not paused)."""
        return max(self._paused_until - self._monotonic(), 0.0)

    def _bucket(self, address: str) -> TokenBucket | None:
        b = self._buckets.get(address)
        if b is None:
            rate = self.rate_of(address) if self.rate_of else self.per_address
            if rate is None:
                return None
            rate = self._scaled(rate)
            if len(self._buckets) > 10_000:
                self._buckets.clear()
            b = self._buckets[address] = TokenBucket(rate, self._monotonic)
        return b

    async def ready(self, address: str) -> None:
        """Wait until ``address`` may have a message (its own pace, and a pause), without
        taking anything: the caller then takes its turn with :meth:`acquire`."""
        bucket = self._bucket(address)
        while True:
            w = max(self.paused_for, bucket.wait_time() if bucket else 0.0)
            if w <= 0:
                return
            await asyncio.sleep(w)

    async def acquire(self, address: str) -> None:
        bucket = self._bucket(address)
        while True:
            paused = self.paused_for
            if paused > 0:
                await asyncio.sleep(paused)
                continue
            # the per-address wait happens outside the lock so other chats go on meanwhile
            w = bucket.wait_time() if bucket else 0.0
            if w > 0:
                await asyncio.sleep(w)
                continue
            async with self._lock:
                gw = self._global.wait_time() if self._global else 0.0
                if gw == 0 and (bucket is None or bucket.wait_time() == 0):
                    if self._global:
                        self._global.take()
                    if bucket:
                        bucket.take()
                    return
            await asyncio.sleep(max(gw, 0.001))
