"""Flows in conversations: the shipped tutorial, check-in, welcome, thank-you and lead capture,
driven through the real engine (real NLU) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.engine import TurnResult
from bot.lifecycle.links import make_start_token
from bot.lifecycle.models import ACTIVE, CANCELLED, DONE, PAUSED, PENDING, WAITING, FlowState
from bot.lifecycle.service import LifecycleService
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.models import Conversation
from bot.types import Inbound
from tests.bot.lifecycle.helpers import (
    T0,
    contact,
    days,
    ev,
    events,
    flows,
    lifecycle_runtime,
    outbox_texts,
)
from tests.conftest import REPO

SECRET = "events-secret"


@pytest.fixture
def flow_settings(db_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(db_url, events_secret=SECRET, content_dir=REPO)


@pytest.fixture
async def world(flow_settings: Settings) -> AsyncIterator[tuple[Runtime, LifecycleService, Any]]:
    async with lifecycle_runtime(flow_settings, start=True) as ctx:
        yield ctx


async def send(
    rt: Runtime,
    text: str,
    *,
    payload: str | None = None,
    who: str = "v1",
    channel: str = "web",
    **meta: Any,
) -> TurnResult:
    lang = "en" if channel == "telegram" else None  # Telegram tells the user's language
    return await rt.engine.handle(
        Inbound(
            channel=channel,
            external_id=who,
            text=text,
            payload=payload,
            language=lang,
            metadata=meta,
        )
    )


def texts(r: TurnResult) -> list[str]:
    return [m.text for m in r.replies]


def buttons(r: TurnResult) -> list[tuple[str, str]]:
    return [(b.title, b.payload) for b in r.replies[-1].buttons]


async def click(rt: Runtime, r: TurnResult, title: str, **kw: Any) -> TurnResult:
    """Press the button ``title`` of the replies ``r`` (the newest one of that title)."""
    for m in reversed(r.replies):
        for b in m.buttons:
            if b.title == title:
                return await send(rt, b.title, payload=b.payload, **kw)
    raise AssertionError(
        f"no button {title!r} in {[b.title for m in r.replies for b in m.buttons]}"
    )


async def state(rt: Runtime, flow_id: str) -> FlowState:
    found = [f for f in await flows(rt) if f.flow_id == flow_id]
    assert found, f"no run of {flow_id}"
    return found[-1]


async def link(rt: Runtime, user: str = "u1", who: str = "v1") -> None:
    token = make_start_token(SECRET, user, now=T0)
    r = await send(rt, f"link {token}", who=who)
    assert texts(r) == ["Thanks! This chat is now connected to your Brewhaus account."]


async def test_tutorial_with_progress_pause_continue_back_and_skip(world: Any) -> None:
    rt, _svc, _clock = world
    r = await send(rt, "Tutorial", payload='/flow_start{"link": "tutorial"}')
    assert texts(r)[0].startswith("Your Brewhaus parcel has arrived!")
    assert texts(r)[1].startswith("Step 1 of 5\nUnpack your gear")
    assert [t for t, _ in buttons(r)] == ["Next ▸", "Pause"]  # no Back on the first step

    r = await click(rt, r, "Next ▸")
    assert texts(r) == [
        "Step 2 of 5\nGrind 15 g of beans (about two tablespoons) for every 250 ml of water, "
        "medium-fine, like table salt."
    ]
    grind = r.replies[0].buttons
    assert [b.title for b in grind] == ["Next ▸", "Grind guide", "◂ Back", "Pause"]
    assert grind[1].url == "https://brewhaus.example/guides/grind"

    r = await send(rt, "back")
    assert texts(r)[0].startswith("Step 1 of 5")
    r = await send(rt, "weiter")  # German works too, and is answered in German
    assert texts(r)[0].startswith("Schritt 2 von 5\nMahle 15 g Bohnen")

    r = await send(rt, "not now")
    assert "continue" in texts(r)[0] and (await state(rt, "onboarding_tutorial")).status == PAUSED
    r = await send(rt, "Do you ship to Austria?")  # a question while paused: just answered
    assert "ship" in texts(r)[0].lower() or "EU" in texts(r)[0]
    assert not any("Step" in t for t in texts(r))

    r = await send(rt, "continue")
    assert texts(r)[0] == "Welcome back! Let's go on with the first-brew guide:"
    assert texts(r)[1].startswith("Step 2 of 5")
    r = await send(rt, "skip")
    assert texts(r)[0].startswith("Step 3 of 5")
    r = await click(rt, r, "Next ▸")
    assert texts(r)[0].startswith("Step 4 of 5")
    assert any(b.url and "video" in b.url for b in r.replies[0].buttons)
    r = await send(rt, "next")
    assert texts(r)[0].startswith("Step 5 of 5")
    r = await click(rt, r, "Next ▸")
    assert texts(r) == [
        "That's it, you're all set! Tell me any time how it's going, or ask me anything about "
        "brewing."
    ]
    st = await state(rt, "onboarding_tutorial")
    assert st.status == DONE and st.history[-1] == "clean"
    recorded = [e.type for e in await events(rt)]
    assert recorded == ["tutorial_completed"]


async def test_an_old_button_shows_where_the_flow_stands(world: Any) -> None:
    rt, _, _ = world
    first = await send(rt, "Tutorial", payload='/flow_start{"link": "tutorial"}')
    r = await click(rt, first, "Next ▸")
    assert texts(r)[0].startswith("Step 2 of 5")
    r = await click(rt, first, "Next ▸")  # pressed again on the first message
    assert texts(r)[0].startswith("Step 2 of 5")


@pytest.mark.parametrize(
    ("pause", "cont"),
    [
        ("pause", "continue"),
        ("später", "weiter"),
        ("szünet", "folytatás"),
        ("pausa", "fortsätt"),
        ("pauza", "kontynuuj"),
    ],
)
async def test_pause_and_continue_in_five_languages(world: Any, pause: str, cont: str) -> None:
    rt, _, _ = world
    await send(rt, "Tutorial", payload='/flow_start{"link": "tutorial"}')
    await send(rt, "Next", payload='/flow_next{"s": "unpack"}')
    await send(rt, pause)
    assert (await state(rt, "onboarding_tutorial")).status == PAUSED
    r = await send(rt, cont)
    st = await state(rt, "onboarding_tutorial")
    assert (st.status, st.step_id) == (ACTIVE, "grind")
    assert any("2" in t and "5" in t for t in texts(r))


async def test_a_question_in_the_middle_gets_an_answer_and_one_reminder(world: Any) -> None:
    rt, _, _ = world
    await send(rt, "Tutorial", payload='/flow_start{"link": "tutorial"}')
    r = await send(rt, "How long is the warranty on the grinder?")
    assert "warranty" in texts(r)[0].lower()
    reminder = [m for m in r.replies if m.metadata.get("flow_reminder")]
    assert len(reminder) == 1
    assert reminder[0].text == (
        "Whenever you're ready, we can go on with the first-brew guide. (Step 1 of 5)"
    )
    assert [b.title for b in reminder[0].buttons] == ["Continue", "Pause"]
    r = await send(rt, "Do you ship to Norway?")
    assert not [m for m in r.replies if m.metadata.get("flow_reminder")]  # once is enough
    r = await send(rt, "Continue", payload=reminder[0].buttons[0].payload)
    assert texts(r)[0].startswith("Step 2 of 5")  # continue on a "Next" page moves on


async def test_lead_capture_for_a_prospect_validates_the_email(world: Any) -> None:
    rt, _, _ = world
    r = await send(rt, "How much does your coffee cost?")
    assert texts(r)[0].startswith("Our coffees cost EUR 8.90")
    assert texts(r)[1].startswith("Would you like our full price list")
    r = await click(rt, r, "Yes, please")
    assert texts(r) == ["Great! What's your email address?"]
    r = await send(rt, "my email is secret")
    assert texts(r) == [
        "That doesn't look like an email address. Could you check it? For example: name@example.com",
        "Great! What's your email address?",
    ]
    r = await send(rt, "Anna@Example.com")
    assert texts(r) == [
        "Thanks! The price list and your code are on their way to anna@example.com."
    ]
    st = await state(rt, "lead_capture")
    assert st.status == DONE and st.slots == {"email": "anna@example.com"}
    async with rt.db.session() as s:
        from bot.storage.models import Contact

        c = (await s.execute(select(Contact))).scalar_one()
    assert c.email == "anna@example.com"
    assert c.attributes["lead_source"] == "chat_prices"
    assert c.lifecycle_stage == "consideration"  # lead_captured moved the prospect on
    assert [e.type for e in await events(rt)] == ["lead_captured"]


async def test_a_customer_asking_prices_gets_the_customer_follow_up(world: Any) -> None:
    rt, svc, _clock = world
    await link(rt)
    await svc.ingest([ev("p1", "purchased", amount=30), ev("d1", "delivered", at=T0)])
    r = await send(rt, "How much does your coffee cost?")
    assert texts(r)[0].startswith("Our coffees cost EUR 8.90")
    assert texts(r)[-1].startswith("As a customer you save 15%")
    assert not [f for f in await flows(rt) if f.flow_id == "lead_capture"]


async def test_thank_you_differs_for_first_and_repeat_orders(world: Any) -> None:
    rt, svc, clock = world
    await link(rt)
    await svc.ingest([ev("o1", "purchased", amount=20)])
    clock.set(T0 + days(20))
    await svc.ingest([ev("o2", "purchased", at=T0 + days(20), amount=20)])
    sent = await outbox_texts(rt, address="v1")
    first = [t for t in sent if t.startswith("Thank you for your order!")]
    again = [t for t in sent if t.startswith("Thanks for ordering again")]
    assert len(first) == 1 and len(again) == 1
    assert sent.index(first[0]) < sent.index(again[0])


async def test_welcome_remembers_the_answer(world: Any) -> None:
    rt, svc, _ = world
    await link(rt)
    await svc.ingest([ev("s1", "signed_up")])
    sent = await outbox_texts(rt, address="v1")
    assert sent[-2:] == [
        "Welcome to Brewhaus! I'm the shop's assistant: ask me about orders, shipping or brewing, any time.",
        "What brings you to us?",
    ]
    r = await send(rt, "Coffee beans")  # typing the button's title works like pressing it
    assert texts(r)[0].startswith("Good choice: the beans subscription")
    c = await contact(rt)
    assert c.attributes["interest"] == "beans"
    assert (await state(rt, "welcome")).status == DONE


async def test_checkin_waits_a_day_then_branches(world: Any) -> None:
    rt, svc, clock = world
    await link(rt)
    await svc.ingest([ev("p", "purchased"), ev("d", "delivered"), ev("u", "used")])
    st = await state(rt, "checkin")
    assert (st.status, st.due_at) == (WAITING, T0 + days(1))
    clock.set(T0 + days(1) - days(0.01))
    assert await svc.runner.run_due() == 0
    clock.set(T0 + days(1))
    assert await svc.runner.run_due() == 1
    sent = await outbox_texts(rt, address="v1")
    assert sent[-1] == "How is it going with your new coffee so far?"
    # could be better -> tips -> the tutorial again (a called flow) -> back, and done
    r = await send(rt, "Could be better", payload='/flow_answer{"s":"how","i":1}')
    assert texts(r)[0].startswith("Sorry to hear that.")
    r = await click(rt, r, "Yes, show me")
    assert texts(r)[1].startswith("Step 1 of 5")
    for _ in range(5):
        r = await send(rt, "next")
    assert texts(r)[-1].startswith("That's it, you're all set!")
    st = await state(rt, "checkin")
    assert (st.status, st.slots["feeling"]) == (DONE, "could_be_better")


async def test_checkin_help_hands_over_to_a_person(world: Any) -> None:
    rt, svc, clock = world
    await link(rt)
    await svc.ingest([ev("u", "used")])
    clock.set(T0 + days(1))
    await svc.runner.run_due()
    r = await send(rt, "I need help", payload='/flow_answer{"s":"how","i":2}')
    async with rt.db.session() as s:
        conv = (await s.execute(select(Conversation))).scalar_one()
    assert conv.status == "handoff" and conv.state["handoff_requested"] == "checkin"
    assert r.replies  # the handoff feature told the customer what happens next
    assert (await state(rt, "checkin")).status == DONE


async def test_a_flow_for_someone_unreachable_starts_with_their_next_message(world: Any) -> None:
    rt, svc, clock = world
    await svc.ingest([ev("p", "purchased", amount=12)])  # nobody to write to yet
    assert (await state(rt, "thank_you")).status == PENDING
    clock.set(T0 + days(1))
    token = make_start_token(SECRET, "u1", now=clock.now())
    r = await send(rt, "/start", channel="telegram", who="777", start_payload=token)
    assert texts(r) == [
        "Thanks! This chat is now connected to your Brewhaus account.",
        "Thank you for your order! We're roasting and packing it now, and you'll get a tracking "
        "link by email. When it arrives, I'll walk you through your first brew step by step.",
    ]
    assert (await state(rt, "thank_you")).status == DONE


async def test_stale_pending_flows_are_dropped(world: Any) -> None:
    rt, svc, clock = world
    await svc.ingest([ev("p", "purchased")])
    clock.set(T0 + days(8))
    token = make_start_token(SECRET, "u1", now=clock.now())
    r = await send(rt, f"link {token}")
    assert len(r.replies) == 1  # linked; a week-old thank-you is not sent
    assert (await state(rt, "thank_you")).status == CANCELLED


async def test_an_invalid_link_token_is_refused(world: Any) -> None:
    rt, _, clock = world
    token = make_start_token("another-secret", "u1", now=clock.now())
    r = await send(rt, "/start", channel="telegram", who="9", start_payload=token)
    assert texts(r) == [
        "That link has expired or isn't valid. Please open the newest one from your Brewhaus account."
    ]
