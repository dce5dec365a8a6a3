"""bot.contacts: an anonymous visitor who turns out to be a known customer is merged into the
customer's contact, and nothing of theirs is lost on the way (a handoff in progress, prompts
already sent, flows, consents)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

import bot.storage.registry  # noqa: F401  (every feature's tables)
from bot.contacts import create_people, link_user
from bot.handoff.models import Handoff
from bot.lifecycle.models import FlowState
from bot.prompts.models import PromptAction, PromptAssignment, PromptSend
from bot.storage.db import Database
from bot.storage.models import Base, Consent, Contact

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


async def test_linking_moves_everything_of_the_anonymous_contact(db: Database) -> None:
    async with db.session() as s:
        [(_, known, _)] = await create_people(s, [("telegram", "555", None, "Ana")], NOW)
        known.user_id = "u1"
        [(visitor, anon, conv)] = await create_people(s, [("web", "v-1", None, None)], NOW)
        s.add_all(
            [
                # both have one: the customer's stays
                Consent(
                    contact_id=known.id,
                    channel="web",
                    purpose="marketing",
                    granted=False,
                    updated_at=NOW,
                ),
                Consent(
                    contact_id=anon.id,
                    channel="web",
                    purpose="marketing",
                    granted=True,
                    updated_at=NOW,
                ),
                PromptAssignment(prompt_id="p", contact_id=known.id, variant="a", assigned_at=NOW),
                PromptAssignment(prompt_id="p", contact_id=anon.id, variant="b", assigned_at=NOW),
                # only the visitor has these: they move
                Consent(
                    contact_id=anon.id, channel="*", purpose="service", granted=True, updated_at=NOW
                ),
                Handoff(
                    contact_id=anon.id,
                    conversation_id=conv.id,
                    reason="asked",
                    channel="web",
                    address="v-1",
                    created_at=NOW,
                ),
                PromptAction(
                    contact_id=anon.id,
                    prompt_id="q",
                    instance_key="k",
                    due_at=NOW,
                    created_at=NOW,
                    updated_at=NOW,
                    status="sent",
                ),
                FlowState(
                    contact_id=anon.id,
                    flow_id="onboarding",
                    status="active",
                    started_at=NOW,
                    updated_at=NOW,
                ),
            ]
        )
        await s.flush()
        action = (await s.execute(select(PromptAction))).scalar_one()
        s.add(
            PromptSend(
                action_id=action.id,
                contact_id=anon.id,
                prompt_id="q",
                instance_key="k",
                purpose="marketing",
                channel="web",
                sent_at=NOW,
            )
        )
        await s.flush()
        anon_id, known_id = anon.id, known.id
        merged = await link_user(s, visitor, "u1", NOW)
        assert merged.id == known_id

    async with db.session() as s:
        for table in Base.metadata.sorted_tables:  # no row is left with the merged-away contact
            if "contact_id" in table.c:
                left = (await s.execute(select(table).where(table.c.contact_id == anon_id))).all()
                assert left == [], table.name
        assert await s.get(Contact, anon_id) is None
        handoff = (await s.execute(select(Handoff))).scalar_one()
        assert handoff.contact_id == known_id and handoff.status == "open"
        assert (await s.execute(select(PromptSend.contact_id))).scalars().all() == [known_id]
        assert (await s.execute(select(FlowState.contact_id))).scalars().all() == [known_id]
        consents = {
            (c.channel, c.purpose): c.granted
            for c in (
                await s.execute(select(Consent).where(Consent.contact_id == known_id))
            ).scalars()
        }
        assert consents == {("web", "marketing"): False, ("*", "service"): True}
        [assignment] = (await s.execute(select(PromptAssignment))).scalars().all()
        assert (assignment.contact_id, assignment.variant) == (known_id, "a")
