"""The prompt scheduler (bot/prompts/scheduler.py) on its own: claims, batches, the message."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.prompts.scheduler import Scheduler, idempotency_key, render_message
from bot.prompts.service import PromptService
from bot.runtime import Runtime
from bot.types import Button, Purpose
from tests.bot.prompts.conftest import SetClock, actions, add_contact, outbox, shop_event


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


async def test_due_actions_are_claimed_once_and_not_before_they_are_due(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    cid = await add_contact(rt)
    clock.set(utc(5, 12))
    await shop_event(rt, cid, "delivered")  # a review request and an NPS survey, days later
    pending = await actions(rt, cid)
    assert len(pending) == 2
    scheduler = Scheduler(svc)
    async with rt.db.session() as s:
        assert await scheduler.claim(s, utc(5, 13), limit=10) == []  # not due yet
    later = max(a.due_at for a in pending)
    async with rt.db.session() as s:
        first = await scheduler.claim(s, later, limit=1)
        rest = await scheduler.claim(s, later, limit=10)  # the leased one is not taken again
    assert len(first) == 1 and len(rest) == 1
    assert first[0][0].id != rest[0][0].id


async def test_a_batch_sends_each_due_prompt_once_on_the_persons_channel(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    cid = await add_contact(rt, channels=("telegram",))
    clock.set(utc(5, 12))
    await shop_event(rt, cid, "delivered")
    scheduler = Scheduler(svc)
    stats = await scheduler.run_batch(utc(12, 9, 30), limit=50)  # 10:30 in Berlin: awake
    sent = await outbox(rt, cid)
    assert stats.sent == len(sent) == 1
    assert sent[0].channel == "telegram"
    again = await scheduler.run_batch(utc(12, 9, 31), limit=50)
    assert again.sent == 0 and len(await outbox(rt, cid)) == 1


def test_marketing_carries_the_opt_out_line_and_service_does_not(svc: PromptService) -> None:
    marketing = next(p for p in svc.book.prompts.values() if p.marketing)
    service = next(p for p in svc.book.prompts.values() if not p.marketing)
    buttons = (Button("Yes", "/yes"),)
    m = render_message("Hi", buttons, marketing, opt_out_line="Reply STOP to opt out")
    assert m.text == "Hi\n\nReply STOP to opt out" and m.purpose == Purpose.MARKETING
    s = render_message("Hi", buttons, service, opt_out_line="Reply STOP to opt out")
    assert s.text == "Hi" and s.purpose == Purpose.SERVICE and s.buttons == buttons


def test_the_idempotency_key_names_person_prompt_and_instance() -> None:
    assert idempotency_key(7, "review_request", "order-1") != idempotency_key(
        7, "review_request", "order-2"
    )
    assert idempotency_key(7, "review_request", "order-1") == idempotency_key(
        7, "review_request", "order-1"
    )
