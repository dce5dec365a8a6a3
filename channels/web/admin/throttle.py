"""Failed logins counted per account and browser or address (see :class:`LoginThrottle`)."""

from __future__ import annotations

import time
from collections.abc import Callable


class LoginThrottle:
    """Failed logins counted per (account, where from), checked with the password's answer.

    The account is the name typed in the form. "Where from" is the browser when it carries a
    device cookie (given at a successful login, signed: it cannot be made up), else the IP
    address. A key with ``limit`` failures in ``window`` seconds is locked until the oldest
    of them is ``window`` old: every try of that key gets 429 then, the right password too
    (otherwise the lock would not slow guessing). Failures of one key never lock another, so
    an attacker behind the staff's proxy, trying names and passwords, cannot lock out staff
    whose browsers logged in before (their device key is theirs alone), nor staff who use
    another name. Over all names, an IP address without a device cookie gets ``ip_limit``
    failures a window (so trying many names is no way around the account limit); a new
    browser behind an attacked proxy can be locked for that window, a known one never.
    In memory, per process.
    """

    def __init__(
        self,
        limit: int = 5,
        ip_limit: int = 30,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.ip_limit, self.window, self.clock = limit, ip_limit, window, clock
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str) -> list[float]:
        now = self.clock()
        recent = [t for t in self._failures.get(key, []) if now - t < self.window]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def locked(self, keys: list[tuple[str, int]]) -> float:
        """Seconds until every one of ``keys`` (key, its limit) is open again; 0 if open."""
        wait = 0.0
        for key, limit in keys:
            recent = self._recent(key)
            if len(recent) >= limit:
                wait = max(wait, self.window - (self.clock() - recent[-limit]))
        return wait

    def fail(self, keys: list[tuple[str, int]]) -> None:
        if len(self._failures) > 100_000:  # a flood of made-up names: forget the old ones
            for key in list(self._failures):
                self._recent(key)
        for key, _ in keys:
            self._failures.setdefault(key, []).append(self.clock())

    def succeed(self, keys: list[tuple[str, int]]) -> None:
        self._failures.pop(keys[0][0], None)  # the account key; an IP's count stays
