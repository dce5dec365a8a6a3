"""Marketing lines after an answer only with consent, once a conversation (issue 23). The demo
shop follows its subscription answer with a newsletter tip (10% off) for prospects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.models import Consent
from bot.types import Inbound, Purpose

QUESTION = "How does the coffee subscription work?"


@pytest.fixture
async def rt(db_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Runtime]:
    r = Runtime(make_settings(db_url), start_worker=False)
    await r.start(migrate=False)
    yield r
    await r.stop()


def ask(who: str, text: str = QUESTION) -> Inbound:
    return Inbound(channel="web", external_id=who, text=text, language="en")


def newsletter(texts: list[str]) -> list[str]:
    return [t for t in texts if "newsletter" in t]


async def consent(rt: Runtime, contact_id: int, granted: bool, channel: str = "*") -> None:
    async with rt.db.session() as s:
        s.add(
            Consent(
                contact_id=contact_id,
                channel=channel,
                purpose="marketing",
                granted=granted,
                source="test",
                updated_at=datetime.now(UTC),
            )
        )


async def test_a_visitor_without_consent_never_gets_the_newsletter_line(rt: Runtime) -> None:
    seen: list[str] = []
    for q in (QUESTION, "Can I pause my subscription?", "Tell me about the bean subscription"):
        res = await rt.engine.handle(ask("anon", q))
        assert "subscription" in res.replies[0].text.casefold()  # the answer itself
        seen += [r.text for r in res.replies]
    assert newsletter(seen) == []


async def test_with_consent_once_a_conversation_and_as_its_own_marketing_message(
    rt: Runtime,
) -> None:
    first = await rt.engine.handle(ask("fan"))
    assert newsletter([r.text for r in first.replies]) == []
    assert first.contact_id is not None
    await consent(rt, first.contact_id, True)
    res = await rt.engine.handle(ask("fan"))
    lines = [r for r in res.replies if "newsletter" in r.text]
    assert len(lines) == 1 and lines[0].purpose == Purpose.MARKETING
    assert "newsletter" not in res.replies[0].text  # never inside the answer
    again = await rt.engine.handle(ask("fan", "Can I pause my subscription?"))
    assert "subscription" in again.replies[0].text.casefold()
    assert newsletter([r.text for r in again.replies]) == []


async def test_a_no_for_this_channel_beats_a_yes_for_all(rt: Runtime) -> None:
    first = await rt.engine.handle(ask("mixed"))
    assert first.contact_id is not None
    await consent(rt, first.contact_id, True)
    await consent(rt, first.contact_id, False, channel="web")
    res = await rt.engine.handle(ask("mixed"))
    assert newsletter([r.text for r in res.replies]) == []
