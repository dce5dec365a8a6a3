"""In-process signals between features, so that no feature imports another's internals.

A receiver is an async callable; it runs inside the sender's transaction (``session``), so
whatever it writes commits or rolls back with the cause.

- ``event_recorded(session, contact, event)``: a shop event was stored (``event`` is the
  lifecycle feature's Event row).
- ``stage_changed(session, contact, old, new, cause, now)``: a contact moved lifecycle stage.
  Bulk moves (the inactivity sweep) use ``send_many``: a receiver connected with ``many=``
  gets one call per batch (``items``: ``[{"contact": ..., "old": ...}, ...]`` plus the shared
  arguments) and can answer it with set-based SQL; the others are called once per item.
- ``opted_out(session, contact, channel, now)``: the person said stop (marketing).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.storage.models import Contact

log = logging.getLogger(__name__)

Receiver = Callable[..., Awaitable[None]]
R = TypeVar("R", bound=Receiver)


class EventRecorded(Protocol):
    async def __call__(
        self, *, session: AsyncSession, contact: Contact, event: Any, **extra: Any
    ) -> None: ...


class StageChanged(Protocol):
    async def __call__(
        self,
        *,
        session: AsyncSession,
        contact: Contact,
        old: str | None,
        new: str,
        cause: str,
        now: datetime,
        **extra: Any,
    ) -> None: ...


class OptedOut(Protocol):
    async def __call__(
        self, *, session: AsyncSession, contact: Contact, channel: str, now: datetime, **extra: Any
    ) -> None: ...


class Signal(Generic[R]):
    """Receivers of one kind (``R``: their signature, which :attr:`send` takes too)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._receivers: list[Receiver] = []
        self._many: dict[Receiver, Receiver] = {}

    def connect(self, receiver: R, *, many: Receiver | None = None) -> R:
        """``many``: the receiver's batch form, for :meth:`send_many`."""
        if receiver not in self._receivers:
            self._receivers.append(receiver)
        if many is not None:
            self._many[receiver] = many
        return receiver

    def disconnect(self, receiver: R) -> None:
        if receiver in self._receivers:
            self._receivers.remove(receiver)
        self._many.pop(receiver, None)

    @property
    def listened(self) -> bool:
        return bool(self._receivers)

    async def send_many(self, items: Sequence[dict[str, Any]], **common: Any) -> None:
        """Many sends at once: batch receivers get ``items`` in one call, the rest one call
        per item (``common`` merged with the item)."""
        if not items:
            return
        for r in list(self._receivers):
            many = self._many.get(r)
            if many is not None:
                await many(items=items, **common)
            else:
                for item in items:
                    await r(**common, **item)

    async def _send(self, **kwargs: Any) -> None:
        for r in list(self._receivers):
            await r(**kwargs)

    @property
    def send(self) -> R:
        """Call every receiver with these keyword arguments (checked against ``R``)."""
        return cast(R, self._send)


class Signals:
    """One set per :class:`~bot.runtime.Runtime` (tests get fresh ones)."""

    def __init__(self) -> None:
        self.event_recorded: Signal[EventRecorded] = Signal("event_recorded")
        self.stage_changed: Signal[StageChanged] = Signal("stage_changed")
        self.opted_out: Signal[OptedOut] = Signal("opted_out")
