"""NPS as a prompt with buttons: promoters get the referral ask, detractors are offered a
person; review requests go to everyone with the same words (no gating)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot.prompts.models import PromptNps
from bot.prompts.service import PromptService
from bot.runtime import Runtime
from bot.types import Inbound
from tests.bot.prompts.conftest import SetClock, add_contact, outbox, shop_event, step, use_prompts

PROMPTS = """
prompts:
  - id: nps_survey
    kind: nps
    trigger: {event: survey_due}
    response: utter_prompt_nps
  - id: referral_ask
    purpose: marketing
    trigger: {nps: promoter, delay: 10m}
    response: utter_prompt_referral
  - id: review_request
    kind: review
    purpose: marketing
    trigger: {event: delivered}
    response: utter_prompt_review
"""


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


async def test_nps_promoter_referral_detractor_person_and_reviews_for_all(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(svc, tmp_path, PROMPTS)
    fan = await add_contact(rt, language="en")
    critic = await add_contact(rt, language="de")
    middle = await add_contact(rt, language="pl")
    clock.set(utc(5, 11))
    for cid in (fan, critic, middle):
        await shop_event(rt, cid, "survey_due")
    await step(svc, clock, utc(5, 11, 1))
    [question] = await outbox(rt, fan)
    buttons = question.payload["buttons"]
    assert [b["title"] for b in buttons] == [str(n) for n in range(11)]
    assert question.purpose == "service" and "STOP" not in question.payload["text"]

    # the fan presses 10
    ten = buttons[10]
    r = await rt.engine.handle(
        Inbound(
            channel="telegram", external_id=f"telegram-{fan}", text="10", payload=ten["payload"]
        )
    )
    assert r.replies[0].text == rt.responses.text("utter_prompt_nps_promoter", "en")
    # the critic types "2" (no button)
    r = await rt.engine.handle(
        Inbound(channel="telegram", external_id=f"telegram-{critic}", text="2")
    )
    [offer] = r.replies
    assert offer.text == rt.responses.text("utter_prompt_nps_detractor", "de")
    payloads = [b.payload for b in offer.buttons]
    assert payloads[0].startswith("/request_human") and json.loads(
        payloads[0][len("/request_human") :]
    ) == {"reason": "nps_detractor"}
    # the middle one types "8/10"
    r = await rt.engine.handle(
        Inbound(channel="telegram", external_id=f"telegram-{middle}", text="8/10")
    )
    assert r.replies[0].text == rt.responses.text("utter_prompt_nps_passive", "pl")
    async with rt.db.session() as s:
        answers = {
            a.contact_id: (a.score, a.category)
            for a in (await s.execute(select(PromptNps))).scalars()
        }
    assert answers == {fan: (10, "promoter"), critic: (2, "detractor"), middle: (8, "passive")}

    # ten minutes later only the promoter gets the referral ask
    await step(svc, clock, utc(5, 11, 12))
    referrals = [r for r in await outbox(rt) if ":referral_ask:" in r.idempotency_key]
    assert [r.contact_id for r in referrals] == [fan]
    assert "invite" in referrals[0].payload["text"] and "Reply STOP" in referrals[0].payload["text"]

    # a "2" typed later, with no survey waiting, is not an NPS answer
    r = await rt.engine.handle(
        Inbound(channel="telegram", external_id=f"telegram-{critic}", text="2")
    )
    assert r.replies[0].text != rt.responses.text("utter_prompt_nps_detractor", "de")

    # review requests: everyone, whatever their score, with the same words per language
    for cid in (fan, critic, middle):
        await shop_event(rt, cid, "delivered")
    await step(svc, clock, utc(5, 11, 13))
    reviews = {
        r.contact_id: r.payload["text"]
        for r in await outbox(rt)
        if ":review_request:" in r.idempotency_key
    }
    assert set(reviews) == {fan, critic, middle}
    assert reviews[critic] == rt.responses.text(
        "utter_prompt_review", "de", first_name="Alex", review_url=svc.config.review_url
    ) + "\n\n" + rt.responses.text("utter_prompt_opt_out_line", "de")
