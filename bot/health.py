"""How the running product's connections fare, for ``/healthz`` and ``/metrics``.

A channel that keeps a connection of its own (Telegram long polling, Slack Socket Mode) reports
here: ``failing(name, reason)`` while it cannot reach its platform (it keeps retrying), ``ok``
once it can again. Failed turns are counted by the engine (``Engine.turn_errors``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Health:
    # connection name -> None when working, else why not
    state: dict[str, str | None] = field(default_factory=dict)
    # connection name -> how many times it was lost and tried again
    reconnects: dict[str, int] = field(default_factory=dict)

    def ok(self, name: str) -> None:
        self.state[name] = None

    def pending(self, name: str, reason: str) -> None:
        """Not working yet (starting up): degraded, but not a failure."""
        self.state[name] = reason

    def failing(self, name: str, reason: str) -> None:
        self.state[name] = reason
        self.reconnects[name] = self.reconnects.get(name, 0) + 1

    @property
    def degraded(self) -> dict[str, str]:
        """The connections failing now, with their reasons."""
        return {name: why for name, why in sorted(self.state.items()) if why is not None}
