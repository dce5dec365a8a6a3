"""Shared bits of the lifecycle and flow tests: a runtime on a controlled clock, events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import ManualClock
from bot.lifecycle.models import Event, FlowState, StageTransition
from bot.lifecycle.schema import EventIn
from bot.lifecycle.service import LifecycleService, service_of
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.models import Contact, OutboxMessage
from tests.auxil.senders import add_channels

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def ev(ident: str, type_: str, user: str = "u1", at: datetime = T0, **props: Any) -> EventIn:
    return EventIn(id=ident, type=type_, user_id=user, occurred_at=at, properties=props)


@asynccontextmanager
async def lifecycle_runtime(
    settings: Settings, clock: ManualClock | None = None, *, start: bool = False
) -> AsyncIterator[tuple[Runtime, LifecycleService, ManualClock]]:
    """A runtime on a manual clock; ``start``: NLU and delivery worker too (turns by text)."""
    clock = clock or ManualClock(T0)
    rt = Runtime(settings, clock=clock, start_worker=False)
    add_channels(rt)  # the product's channels, as channels.app adds them
    if start:
        await rt.start(migrate=False)
    try:
        yield rt, service_of(rt), clock
    finally:
        if start:
            await rt.stop()
        else:
            await rt.db.dispose()


async def contact(rt: Runtime, user: str = "u1") -> Contact:
    async with rt.db.session() as s:
        c = (await s.execute(select(Contact).where(Contact.user_id == user))).scalar_one()
    return c


async def transitions(rt: Runtime, user: str = "u1") -> list[StageTransition]:
    async with rt.db.session() as s:
        rows = (
            await s.execute(
                select(StageTransition)
                .join(Contact, Contact.id == StageTransition.contact_id)
                .where(Contact.user_id == user)
                .order_by(StageTransition.id)
            )
        ).scalars()
        return list(rows)


async def events(rt: Runtime) -> list[Event]:
    async with rt.db.session() as s:
        return list((await s.execute(select(Event).order_by(Event.id))).scalars())


async def flows(rt: Runtime, contact_id: int | None = None) -> list[FlowState]:
    async with rt.db.session() as s:
        q = select(FlowState).order_by(FlowState.id)
        if contact_id is not None:
            q = q.where(FlowState.contact_id == contact_id)
        return list((await s.execute(q)).scalars())


async def outbox_texts(rt: Runtime, address: str | None = None) -> list[str]:
    async with rt.db.session() as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id)
        if address is not None:
            q = q.where(OutboxMessage.address == address)
        return [str(m.payload.get("text")) for m in (await s.execute(q)).scalars()]


def days(n: float) -> timedelta:
    return timedelta(days=n)
