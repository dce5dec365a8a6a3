"""A runtime on a clock that moves only when a test says, contacts, and shop events.

Shop events reach the prompts feature as the lifecycle feature delivers them: through
``runtime.signals.event_recorded`` inside the transaction that stored the event.
"""

from __future__ import annotations

import asyncio
import itertools
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.internal.config import load_internal_settings
from bot.matcher import SimpleMatcher
from bot.prompts import configure, service_of
from bot.prompts.config import load_prompt_settings
from bot.prompts.models import PromptAction, PromptSkip
from bot.prompts.service import PromptService
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.models import Consent, Contact, Identity, OutboxMessage
from tests.auxil.senders import add_channels
from tests.conftest import REPO

MONDAY = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # Monday 5 January 2026, 07:00 in Berlin


class SetClock(ManualClock):
    """Time moves only when a test sets it (``ManualClock.sleep`` would jump ahead)."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class ShopEvent:
    """The fields of the lifecycle feature's event row that receivers read."""

    type: str
    occurred_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    id: int = 0
    event_id: str = ""


_ids = itertools.count(1)


@pytest.fixture
def clock() -> SetClock:
    return SetClock(MONDAY)


@pytest.fixture
async def rt(
    db_url: str,
    make_settings: Callable[..., Settings],
    clock: SetClock,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Runtime]:
    settings = make_settings(
        db_url,
        default_timezone="Europe/Berlin",
        prompts=load_prompt_settings(scheduler=False),  # rounds run when a test says
        internal=load_internal_settings(scheduler=False),
    )
    nlu = SimpleMatcher.from_folder(REPO / "nlu_data", threshold=0.3)
    r = Runtime(settings, clock=clock, nlu=nlu, start_worker=False)
    add_channels(r)  # the product's channels, as channels.app adds them
    await r.start(migrate=False)
    yield r
    await r.stop()


@pytest.fixture
def svc(rt: Runtime) -> PromptService:
    """The service with the demo prompts (flows/prompts.yml) and default settings."""
    return configure(rt, scheduler=False)


def use_prompts(svc: PromptService, tmp_path: Path, text: str, **settings: Any) -> PromptService:
    """Replace the prompts file (and settings) for one test."""
    path = tmp_path / "prompts.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    svc.configure(file=path, scheduler=False, **settings)
    return svc


async def add_contact(
    rt: Runtime,
    *,
    tz: str | None = "Europe/Berlin",
    language: str = "en",
    name: str = "Alex Doe",
    channels: tuple[str, ...] = ("telegram",),
    started: bool = True,
    purchases: int = 1,
    stage: str = "retention",
    consent: dict[tuple[str, str], bool] | None = None,
    attributes: dict[str, Any] | None = None,
    preferred: str | None = None,
) -> int:
    now = rt.clock.now()
    n = next(_ids)
    async with rt.db.session() as s:
        c = Contact(
            user_id=f"shop-{n}-{id(rt)}",
            display_name=name,
            language=language,
            timezone=tz,
            lifecycle_stage=stage,
            stage_entered_at=now,
            purchase_count=purchases,
            first_purchase_at=now if purchases else None,
            monetary_total=Decimal(0),
            preferred_channel=preferred,
            attributes=attributes or {},
            created_at=now,
            updated_at=now,
        )
        s.add(c)
        await s.flush()
        for ch in channels:
            s.add(
                Identity(
                    contact_id=c.id,
                    channel=ch,
                    external_id=f"{ch}-{c.id}",
                    address=f"{ch}-{c.id}" if ch != "telegram" else str(1000 + c.id),
                    started=started if ch == "telegram" else True,
                    created_at=now,
                    last_seen_at=now,
                )
            )
        for (channel, purpose), granted in (consent or {}).items():
            s.add(
                Consent(
                    contact_id=c.id,
                    channel=channel,
                    purpose=purpose,
                    granted=granted,
                    source="test",
                    updated_at=now,
                )
            )
        return int(c.id)


async def shop_event(
    rt: Runtime,
    contact_id: int,
    type_: str,
    at: datetime | None = None,
    **properties: Any,
) -> ShopEvent:
    """An event as the lifecycle feature records it: the signal inside its transaction."""
    n = next(_ids)
    event = ShopEvent(
        type=type_,
        occurred_at=at or rt.clock.now(),
        properties=properties,
        id=n,
        event_id=f"evt-{n}",
    )
    async with rt.db.session() as s:
        contact = await s.get(Contact, contact_id)
        await rt.signals.event_recorded.send(session=s, contact=contact, event=event)
    return event


async def enter_stage(rt: Runtime, contact_id: int, stage: str, at: datetime | None = None) -> None:
    now = at or rt.clock.now()
    async with rt.db.session() as s:
        contact = await s.get(Contact, contact_id)
        assert contact is not None
        old = contact.lifecycle_stage
        contact.lifecycle_stage = stage
        contact.stage_entered_at = now
        await rt.signals.stage_changed.send(
            session=s, contact=contact, old=old, new=stage, cause="test", now=now
        )


async def outbox(rt: Runtime, contact_id: int | None = None) -> list[OutboxMessage]:
    async with rt.db.session() as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id)
        if contact_id is not None:
            q = q.where(OutboxMessage.contact_id == contact_id)
        return list((await s.execute(q)).scalars())


async def actions(rt: Runtime, contact_id: int | None = None) -> list[PromptAction]:
    async with rt.db.session() as s:
        q = select(PromptAction).order_by(PromptAction.id)
        if contact_id is not None:
            q = q.where(PromptAction.contact_id == contact_id)
        return list((await s.execute(q)).scalars())


async def skips(rt: Runtime, contact_id: int | None = None) -> list[PromptSkip]:
    async with rt.db.session() as s:
        q = select(PromptSkip).order_by(PromptSkip.id)
        if contact_id is not None:
            q = q.where(PromptSkip.contact_id == contact_id)
        return list((await s.execute(q)).scalars())


async def step(
    svc: PromptService, clock: ManualClock, when: datetime, *, sweep: bool = False
) -> Any:
    """Move the clock and run one scheduler round (``sweep``: the periodic sweeps too)."""
    clock.set(when)
    return await svc.run_once(when, sweep=sweep)


def svc_of(rt: Runtime) -> PromptService:
    return service_of(rt)
