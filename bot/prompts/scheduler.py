"""The scheduler: claims due actions, applies the guard rails, writes the outbox.

One batch is one transaction: the due rows are claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL (the action *and* its contact, so a second scheduler neither takes the same action
nor decides about the same person at the same time, which keeps the caps exact), SQLite's
single writer does the same there. The outbox rows (``engine.write`` with the key
``prompt:<contact>:<prompt>:<instance>``), the action's new status, the send or skip record
and the experiment exposure commit together: a crash loses nothing and sends nothing twice.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine import Reply
from bot.outreach.reach import Decision, capabilities
from bot.outreach.stats import RoundStats
from bot.prompts.experiments import HOLDOUT, assign
from bot.prompts.guards import load_facts
from bot.prompts.models import (
    CANCELLED,
    PENDING,
    SENT,
    SKIPPED,
    PromptAction,
    PromptAssignment,
    PromptSend,
    PromptSkip,
)
from bot.prompts.triggers import HELD
from bot.storage.dialect import insert_for as _insert
from bot.storage.models import Contact, Conversation
from bot.types import Button, Outbound, Purpose

if TYPE_CHECKING:
    from bot.prompts.definitions import Prompt
    from bot.prompts.service import PromptService

log = logging.getLogger(__name__)


_SKIPS = cast(Table, PromptSkip.__table__)


def idempotency_key(contact_id: int, prompt_id: str, instance_key: str) -> str:
    return f"prompt:{contact_id}:{prompt_id}:{instance_key}"


class Scheduler:
    def __init__(self, service: PromptService) -> None:
        self.service = service

    @property
    def runtime(self) -> Any:
        return self.service.runtime

    async def claim(
        self, s: AsyncSession, now: datetime, limit: int
    ) -> list[tuple[PromptAction, Contact]]:
        lease = timedelta(seconds=self.service.config.lease_seconds)
        due = (
            (PromptAction.status == PENDING)
            & (PromptAction.due_at <= now)
            & or_(PromptAction.claimed_until.is_(None), PromptAction.claimed_until <= now)
        )
        q = (
            select(PromptAction, Contact)
            .join(Contact, Contact.id == PromptAction.contact_id)
            .where(due)
            .order_by(PromptAction.due_at, PromptAction.id)
            .limit(limit)
        )
        if self.runtime.db.is_postgres:
            # NO KEY UPDATE: does not block inserts elsewhere that reference the contact
            q = q.with_for_update(
                skip_locked=True,
                key_share=True,
                of=[PromptAction.__table__, Contact.__table__],
            )
        rows: list[tuple[PromptAction, Contact]] = [(a, c) for a, c in (await s.execute(q)).all()]
        if rows:
            # the lease: a batch that outlives its transaction (it never does today) or an
            # inspection from outside can see what is being worked on
            await s.execute(
                update(PromptAction)
                .where(PromptAction.id.in_([a.id for a, _ in rows]))
                .values(claimed_until=now + lease)
                .execution_options(synchronize_session=False)
            )
        return rows

    async def run_batch(self, now: datetime, limit: int) -> RoundStats:
        stats = RoundStats()
        svc = self.service
        book = svc.book
        rules = svc.rules
        async with self.runtime.db.session() as s:
            rows = await self.claim(s, now, limit)
            if not rows:
                return stats
            stats.batches = 1
            contacts = {c.id: c for _, c in rows}
            facts = await load_facts(
                s, list(contacts), now, svc.config, capabilities(self.runtime.senders)
            )
            # highest priority first for each person: it gets the cap before the others
            order = sorted(
                rows,
                key=lambda r: (
                    r[1].id,
                    -(
                        book.prompts[r[0].prompt_id].priority
                        if r[0].prompt_id in book.prompts
                        else 0
                    ),
                    r[0].due_at,
                ),
            )
            updates: list[dict[str, Any]] = []
            skips: list[dict[str, Any]] = []
            sends: list[dict[str, Any]] = []
            exposures: list[dict[str, Any]] = []
            to_send: list[tuple[PromptAction, Contact, Prompt, Decision, str]] = []
            for action, contact in order:
                prompt = book.prompts.get(action.prompt_id)
                if prompt is None:
                    updates.append(_upd(action, CANCELLED, "prompt_removed", now))
                    stats.cancelled += 1
                    continue
                d = rules.decide(prompt, contact, action.due_at, facts, now)
                if d.outcome == "defer":
                    assert d.until is not None
                    updates.append(
                        _upd(action, PENDING, d.reason, now, due_at=d.until, deferred=True)
                    )
                    stats.deferred += 1
                    continue
                if d.outcome == "cancel":
                    updates.append(_upd(action, CANCELLED, d.reason, now))
                    stats.cancelled += 1
                    continue
                group = assign(prompt, contact.id, svc.config.salt)
                if d.outcome == "skip":
                    updates.append(_upd(action, SKIPPED, d.reason, now))
                    skips.append(skip_row(action, d.reason or "", d.detail, None, now))
                    stats.skipped[d.reason or ""] += 1
                    continue
                exposures.append(
                    {
                        "prompt_id": prompt.id,
                        "contact_id": contact.id,
                        "variant": group,
                        "assigned_at": now,
                    }
                )
                if group == HOLDOUT:
                    updates.append(_upd(action, HELD, HOLDOUT, now, variant=HOLDOUT))
                    skips.append(skip_row(action, HOLDOUT, None, HOLDOUT, now))
                    stats.held += 1
                    continue
                if prompt.marketing:  # counts towards the caps of the rest of this batch
                    facts.sends.setdefault(contact.id, []).append((d.channel or "", now))
                to_send.append((action, contact, prompt, d, group))
            if to_send:
                conversations = await self._conversations(s, [c for _, c, *_ in to_send], now)
                replies = [
                    self._reply(a, c, conversations[c.id], p, d, g, now)
                    for a, c, p, d, g in to_send
                ]
                ids = await self.runtime.engine.write(s, replies, now=now)
                written = {r.idempotency_key: i[0] for r, i in zip(replies, ids, strict=True) if i}
                for (action, contact, prompt, d, group), reply in zip(
                    to_send, replies, strict=True
                ):
                    updates.append(_upd(action, SENT, None, now, variant=group))
                    sends.append(
                        {
                            "action_id": action.id,
                            "contact_id": contact.id,
                            "prompt_id": prompt.id,
                            "instance_key": action.instance_key,
                            "variant": group,
                            "purpose": prompt.purpose,
                            "channel": d.channel,
                            "outbox_id": written.get(reply.idempotency_key),
                            "sent_at": now,
                        }
                    )
                    stats.sent += 1
            await self._record(s, updates, sends, skips, exposures)
        if stats.sent:
            self.runtime.worker.wake()
        return stats

    async def _conversations(
        self, s: AsyncSession, contacts: list[Contact], now: datetime
    ) -> dict[int, Conversation]:
        """The open conversation of each person (created where there is none), in two
        statements for the batch."""
        ids = sorted({c.id for c in contacts})
        found: dict[int, Conversation] = {}
        for conv in (
            await s.execute(
                select(Conversation)
                .where(Conversation.contact_id.in_(ids), Conversation.status != "closed")
                .order_by(Conversation.id.desc())
            )
        ).scalars():
            found.setdefault(conv.contact_id, conv)
        missing = [cid for cid in ids if cid not in found]
        if missing:
            new = [
                Conversation(contact_id=cid, created_at=now, updated_at=now, state={})
                for cid in missing
            ]
            s.add_all(new)
            await s.flush()
            for conv in new:
                found[conv.contact_id] = conv
        return found

    def _reply(
        self,
        action: PromptAction,
        contact: Contact,
        conv: Conversation,
        prompt: Prompt,
        d: Decision,
        group: str,
        now: datetime,
    ) -> Reply:
        """The message for one person, written with the others of the batch by
        ``engine.write`` under the key ``prompt:<contact>:<prompt>:<instance>``."""
        svc = self.service
        language = svc.language_of(contact)
        message = svc.render(
            prompt, group, contact, language, action.context or {}, action.instance_key
        )
        assert d.channel is not None and d.address is not None
        if prompt.kind == "nps":  # a number typed next answers the survey
            conv.state = {
                **(conv.state or {}),
                "nps": {"prompt": prompt.id, "at": now.isoformat()},
            }
        return Reply(
            contact_id=contact.id,
            conversation_id=conv.id,
            channel=d.channel,
            address=d.address,
            message=message,
            idempotency_key=idempotency_key(contact.id, prompt.id, action.instance_key),
            language=language,
            meta={"intent": f"prompt:{prompt.id}", "prompt": prompt.id, "variant": group},
        )

    async def _record(
        self,
        s: AsyncSession,
        updates: list[dict[str, Any]],
        sends: list[dict[str, Any]],
        skips: list[dict[str, Any]],
        exposures: list[dict[str, Any]],
    ) -> None:
        if updates:
            await s.execute(update(PromptAction), updates)
        if sends:
            stmt = _insert(s)(PromptSend).on_conflict_do_nothing(index_elements=["action_id"])
            await s.execute(stmt, sends)
        if skips:
            await s.execute(insert(_SKIPS), skips)  # Core: one multi-row INSERT
        if exposures:
            stmt = _insert(s)(PromptAssignment).on_conflict_do_nothing(
                index_elements=["prompt_id", "contact_id"]
            )
            await s.execute(stmt, exposures)


def _upd(
    action: PromptAction,
    status: str,
    reason: str | None,
    now: datetime,
    *,
    due_at: datetime | None = None,
    variant: str | None = None,
    deferred: bool = False,
) -> dict[str, Any]:
    return {
        "id": action.id,
        "status": status,
        "reason": reason,
        "variant": variant if variant is not None else action.variant,
        "due_at": due_at or action.due_at,
        "deferrals": (action.deferrals or 0) + (1 if deferred else 0),
        "claimed_until": None,
        "updated_at": now,
    }


def skip_row(
    action: PromptAction, reason: str, detail: str | None, variant: str | None, now: datetime
) -> dict[str, Any]:
    """The ``prompt_skips`` row saying why ``action`` was not sent."""
    return {
        "action_id": action.id,
        "contact_id": action.contact_id,
        "prompt_id": action.prompt_id,
        "instance_key": action.instance_key,
        "variant": variant,
        "reason": reason,
        "detail": detail,
        "at": now,
    }


def render_message(
    text: str,
    buttons: tuple[Button, ...],
    prompt: Prompt,
    *,
    opt_out_line: str | None,
    extra_buttons: tuple[Button, ...] = (),
    metadata: dict[str, Any] | None = None,
) -> Outbound:
    if prompt.marketing and opt_out_line:
        text = f"{text}\n\n{opt_out_line}"
    return Outbound(
        text=text,
        buttons=(*buttons, *extra_buttons),
        purpose=Purpose.MARKETING if prompt.marketing else Purpose.SERVICE,
        metadata=metadata or {},
    )


def stable_rng(*parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in parts))
