"""Guard rails at send time: caps with priorities, stop, suppression, consent, channel choice."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot.handoff.models import Handoff
from bot.prompts.models import PromptSend
from bot.prompts.service import PromptService
from bot.runtime import Runtime
from bot.storage.models import Contact
from bot.types import Inbound
from tests.bot.prompts.conftest import (
    SetClock,
    actions,
    add_contact,
    outbox,
    shop_event,
    skips,
    step,
    use_prompts,
)

THREE_OFFERS = """
prompts:
  - id: offer_low
    purpose: marketing
    priority: 10
    trigger: {event: offer_low}
    reentry: always
    response: utter_prompt_miss_you_a
  - id: offer_mid
    purpose: marketing
    priority: 50
    trigger: {event: offer_mid}
    reentry: always
    response: utter_prompt_miss_you_b
  - id: offer_high
    purpose: marketing
    priority: 90
    trigger: {event: offer_high}
    reentry: always
    response: utter_prompt_win_back
  - id: order_update
    purpose: service
    trigger: {event: shipped}
    reentry: always
    response: utter_prompt_reorder
"""


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


async def test_cap_two_a_week_skips_the_third_with_reason_capped(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(svc, tmp_path, THREE_OFFERS)
    cid = await add_contact(rt)
    for day, event in ((5, "offer_low"), (6, "offer_mid"), (7, "offer_high")):
        clock.set(utc(day, 11))
        await shop_event(rt, cid, event)
        await step(svc, clock, utc(day, 11, 1))
    texts = [r.payload["text"] for r in await outbox(rt, cid)]
    assert len(texts) == 2
    [skip] = await skips(rt, cid)
    assert (skip.prompt_id, skip.reason) == ("offer_high", "capped")
    assert skip.detail == "2 marketing per 1w"
    # service messages are not capped
    await shop_event(rt, cid, "shipped")
    await step(svc, clock, utc(7, 11, 2))
    assert len(await outbox(rt, cid)) == 3
    # a week after the first, there is room again
    clock.set(utc(12, 11, 5))
    await shop_event(rt, cid, "offer_high")
    await step(svc, clock, utc(12, 11, 6))
    assert len(await outbox(rt, cid)) == 4


async def test_when_prompts_compete_for_the_cap_the_higher_priority_wins(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(svc, tmp_path, THREE_OFFERS)
    cid = await add_contact(rt)
    clock.set(utc(5, 11))
    for event in ("offer_low", "offer_mid", "offer_high"):  # all due in the same round
        await shop_event(rt, cid, event)
    stats = await step(svc, clock, utc(5, 11, 1))
    assert stats.sent == 2 and stats.skipped == {"capped": 1}
    async with rt.db.session() as s:
        sent = set((await s.execute(select(PromptSend.prompt_id))).scalars())
    assert sent == {"offer_mid", "offer_high"}
    assert [(k.prompt_id, k.reason) for k in await skips(rt, cid)] == [("offer_low", "capped")]


async def test_per_channel_cap(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(svc, tmp_path, THREE_OFFERS, channel_caps={"telegram": "1/1d"})
    cid = await add_contact(rt)
    clock.set(utc(5, 11))
    await shop_event(rt, cid, "offer_high")
    await shop_event(rt, cid, "offer_mid")
    await step(svc, clock, utc(5, 11, 1))
    assert len(await outbox(rt, cid)) == 1
    [skip] = await skips(rt, cid)
    assert skip.reason == "capped" and skip.detail == "1 on telegram per 1d"


async def test_stop_ends_marketing_at_once_but_service_still_arrives(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(svc, tmp_path, THREE_OFFERS)
    cid = await add_contact(rt, language="de")
    clock.set(utc(5, 11))
    await shop_event(rt, cid, "offer_mid")
    await step(svc, clock, utc(5, 11, 1))
    [offer] = await outbox(rt, cid)
    assert offer.purpose == "marketing"
    assert "STOPP" in offer.payload["text"]  # every marketing message says how to stop
    await shop_event(rt, cid, "offer_high")  # queued, not yet due in a round
    # the person answers "Stopp" in the Telegram chat
    result = await rt.engine.handle(
        Inbound(channel="telegram", external_id=f"telegram-{cid}", text="Stopp")
    )
    assert result.replies[0].text == rt.responses.text("utter_opted_out", "de")
    async with rt.db.session() as s:
        contact = await s.get(Contact, cid)
        assert contact is not None and contact.marketing_opt_out
    await step(svc, clock, utc(5, 11, 3))
    await shop_event(rt, cid, "offer_low")
    await shop_event(rt, cid, "shipped")
    await step(svc, clock, utc(5, 11, 4))
    rows = [r for r in await outbox(rt, cid) if r.payload.get("sender") != "user"]
    proactive = [r for r in rows if r.idempotency_key.startswith("prompt:")]
    assert [r.purpose for r in proactive] == ["marketing", "service"]
    reasons = {(k.prompt_id, k.reason) for k in await skips(rt, cid)}
    assert reasons == {("offer_high", "opted_out"), ("offer_low", "opted_out")}


async def test_stop_while_staff_have_the_conversation_still_opts_out(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    cid = await add_contact(rt)
    tg = f"telegram-{cid}"
    clock.set(utc(5, 11))
    await rt.engine.handle(
        Inbound(channel="telegram", external_id=tg, text="hi", payload="/request_human")
    )
    result = await rt.engine.handle(Inbound(channel="telegram", external_id=tg, text="STOP"))
    # confirmed even while the conversation is with staff (issue 23: no dead end)
    assert any("marketing" in r.text for r in result.replies)
    async with rt.db.session() as s:
        contact = await s.get(Contact, cid)
        assert contact is not None and contact.marketing_opt_out


async def test_open_handoff_suppresses_the_review_request(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    calm = await add_contact(rt)
    upset = await add_contact(rt)
    clock.set(utc(5, 12))
    for cid in (calm, upset):
        await shop_event(rt, cid, "delivered")
    # a week later, one of them is talking to staff about a broken grinder
    clock.set(utc(12, 8))
    await rt.engine.handle(
        Inbound(
            channel="telegram",
            external_id=f"telegram-{upset}",
            text="I want a person",
            payload="/request_human",
        )
    )
    async with rt.db.session() as s:
        [h] = (await s.execute(select(Handoff))).scalars().all()
        assert h.contact_id == upset and h.status == "open"
    await step(svc, clock, utc(12, 9, 0))  # 10:00 in Berlin
    reviews = [r for r in await outbox(rt) if r.idempotency_key.startswith("prompt:")]
    assert [r.contact_id for r in reviews] == [calm]
    assert [(k.prompt_id, k.reason) for k in await skips(rt, upset)] == [
        ("review_request", "handoff_open")
    ]


async def test_low_csat_and_open_complaint_suppress(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    unhappy = await add_contact(rt)
    complained = await add_contact(rt)
    fine = await add_contact(rt)
    clock.set(utc(5, 12))
    async with rt.db.session() as s:
        contact = await s.get(Contact, unhappy)
        assert contact is not None
        from bot.storage.models import Conversation

        conv = Conversation(contact_id=unhappy, created_at=clock.now(), updated_at=clock.now())
        s.add(conv)
        await s.flush()
        s.add(
            Handoff(
                contact_id=unhappy,
                conversation_id=conv.id,
                reason="asked",
                channel="telegram",
                address="x",
                status="resolved",
                csat=2,
                created_at=clock.now(),
                resolved_at=clock.now(),
            )
        )
    await shop_event(rt, complained, "complaint_opened")
    for cid in (unhappy, complained, fine):
        await shop_event(rt, cid, "delivered")
    await step(svc, clock, utc(12, 9, 0))
    reviews = [r.contact_id for r in await outbox(rt) if "review" in r.idempotency_key]
    assert reviews == [fine]
    assert {(k.contact_id, k.reason) for k in await skips(rt)} == {
        (unhappy, "low_csat"),
        (complained, "complaint_open"),
    }
    # the complaint resolved, the next delivery's review goes out
    clock.set(utc(20, 12))
    await shop_event(rt, complained, "complaint_resolved")
    await shop_event(rt, complained, "delivered")
    await step(svc, clock, utc(27, 9, 0))
    assert complained in [r.contact_id for r in await outbox(rt) if "review" in r.idempotency_key]


async def test_consent_soft_opt_in_and_channel_choice(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(svc, tmp_path, THREE_OFFERS)
    prospect = await add_contact(rt, purchases=0)  # never bought: needs explicit consent
    agreed = await add_contact(rt, purchases=0, consent={("*", "marketing"): True})
    customer = await add_contact(rt, purchases=2)  # soft opt-in
    refused_tg = await add_contact(
        rt, purchases=2, channels=("telegram", "web"), consent={("telegram", "marketing"): False}
    )
    not_started = await add_contact(rt, started=False)  # Telegram: never pressed Start
    prefers_slack = await add_contact(rt, channels=("telegram", "slack"), preferred="slack")
    nowhere = await add_contact(rt, channels=())
    everyone = [prospect, agreed, customer, refused_tg, not_started, prefers_slack, nowhere]
    clock.set(utc(5, 11))
    for cid in everyone:
        await shop_event(rt, cid, "offer_mid")
    await step(svc, clock, utc(5, 11, 1))
    sent = {r.contact_id: r.channel for r in await outbox(rt)}
    assert sent == {
        agreed: "telegram",
        customer: "telegram",
        refused_tg: "web",  # said no on Telegram only
        prefers_slack: "slack",
    }
    assert {k.contact_id: k.reason for k in await skips(rt)} == {
        prospect: "no_consent",
        not_started: "unreachable",
        nowhere: "unreachable",
    }
    # service messages need no marketing consent
    for cid in everyone:
        await shop_event(rt, cid, "shipped")
    await step(svc, clock, utc(5, 11, 2))
    service = {r.contact_id for r in await outbox(rt) if r.purpose == "service"}
    assert service == {prospect, agreed, customer, refused_tg, prefers_slack}


async def test_a_person_who_left_the_stage_is_not_sent_the_stage_prompt(
    rt: Runtime, svc: PromptService, clock: SetClock
) -> None:
    from tests.bot.prompts.conftest import enter_stage

    back = await add_contact(rt)
    still = await add_contact(rt)
    clock.set(utc(5, 15))
    await enter_stage(rt, back, "at-risk")
    await enter_stage(rt, still, "at-risk")
    clock.set(utc(5, 20))
    await enter_stage(rt, back, "retention")  # bought again before 10:00 the next day
    await step(svc, clock, utc(6, 9, 0))
    from bot.prompts.experiments import assign

    group = assign(svc.book.prompts["we_miss_you"], still, svc.config.salt)
    assert {a.contact_id: (a.status, a.reason) for a in await actions(rt)} == {
        back: ("cancelled", "stage_changed"),
        still: ("held", "holdout") if group == "holdout" else ("sent", None),
    }
