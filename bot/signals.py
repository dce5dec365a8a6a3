"""In-process signals between features, so that no feature imports another's internals.

A receiver is an async callable; it runs inside the sender's transaction (``session``), so
whatever it writes commits or rolls back with the cause.

- ``event_recorded(session, contact, event)``: a shop event was stored (``event`` is the
  lifecycle feature's Event row).
- ``stage_changed(session, contact, old, new, cause, now)``: a contact moved lifecycle stage.
- ``opted_out(session, contact, channel, now)``: the person said stop (marketing).
- ``handoff_changed(session, handoff, old_status, new_status, now)``: a handoff ticket moved.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Receiver = Callable[..., Awaitable[None]]


class Signal:
    def __init__(self, name: str) -> None:
        self.name = name
        self._receivers: list[Receiver] = []

    def connect(self, receiver: Receiver) -> Receiver:
        if receiver not in self._receivers:
            self._receivers.append(receiver)
        return receiver

    def disconnect(self, receiver: Receiver) -> None:
        if receiver in self._receivers:
            self._receivers.remove(receiver)

    async def send(self, **kwargs: Any) -> None:
        for r in list(self._receivers):
            await r(**kwargs)


class Signals:
    """One set per :class:`~bot.runtime.Runtime` (tests get fresh ones)."""

    def __init__(self) -> None:
        self.event_recorded = Signal("event_recorded")
        self.stage_changed = Signal("stage_changed")
        self.opted_out = Signal("opted_out")
        self.handoff_changed = Signal("handoff_changed")
