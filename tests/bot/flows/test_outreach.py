"""Flows outside a turn go through choose_reach: consent and the channel's capability count."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.lifecycle.models import PENDING
from bot.settings import Settings
from bot.storage.models import Consent, Identity
from bot.types import Capabilities
from tests.auxil.senders import Recorder
from tests.bot.flows.test_runner import SECRET, link, state
from tests.bot.lifecycle.helpers import T0, contact, ev, lifecycle_runtime, outbox_texts
from tests.conftest import REPO

THANKS = "Thank you for your order!"


@pytest.fixture
async def world(db_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Any]:
    settings = make_settings(db_url, events_secret=SECRET, content_dir=REPO)
    async with lifecycle_runtime(settings, start=True) as ctx:
        yield ctx


async def test_a_person_who_refused_messages_gets_no_flow_push(world: Any) -> None:
    rt, svc, _ = world
    await link(rt)
    c = await contact(rt)
    async with rt.db.session() as s:
        s.add(
            Consent(contact_id=c.id, channel="*", purpose="service", granted=False, updated_at=T0)
        )
    await svc.ingest([ev("p", "purchased", amount=12)])
    assert not [t for t in await outbox_texts(rt, address="v1") if t.startswith(THANKS)]
    assert (await state(rt, "thank_you")).status == PENDING  # starts when they write next


async def test_a_new_channel_that_declares_push_gets_the_flow(world: Any) -> None:
    rt, svc, _ = world
    await link(rt)
    c = await contact(rt)
    del rt.senders["web"]  # the visitor's web chat could not write first any more
    rt.add_sender(Recorder("pigeon", Capabilities(push=True)))
    async with rt.db.session() as s:
        s.add(
            Identity(
                contact_id=c.id, channel="pigeon", external_id="p1", address="loft-7",
                reachable=True, started=True, created_at=T0, last_seen_at=T0,
            )
        )  # fmt: skip
    await svc.ingest([ev("p", "purchased", amount=12)])
    assert [t for t in await outbox_texts(rt, address="loft-7") if t.startswith(THANKS)]
    assert not [t for t in await outbox_texts(rt, address="v1") if t.startswith(THANKS)]
