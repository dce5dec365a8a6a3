"""Guard rails, applied when a prompt is due (design §1, §7).

For a batch of due actions everything the rules need is read in a handful of set-based
queries (identities, consents, open handoffs and low CSAT, open complaints, recent marketing
sends); the decisions are then made in memory, in priority order per person, so that a cap
holds within the batch too. Each rule that stops a prompt names its reason:

``expired`` far too late; ``stage_changed`` the person left the stage that triggered it
(cancelled); ``audience`` no longer in the prompt's audience; ``opted_out`` said stop
(marketing); ``handoff_open`` / ``complaint_open`` / ``low_csat`` suppression; ``unreachable``
no identity we may write to (Telegram only after /start); ``no_consent`` no consent for the
purpose on any reachable channel (EU soft opt-in for existing customers counts); ``capped``
frequency cap across prompts or per channel; ``holdout`` the experiment's control group
(counted, nothing sent). Quiet hours defer to the morning instead of skipping.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outreach.reach import CANCEL, SKIP, Decision, Person, Reach, choose_reach
from bot.outreach.windows import QuietHours
from bot.prompts.config import PromptSettings
from bot.prompts.definitions import Prompt
from bot.prompts.models import PromptSend, PromptSuppression
from bot.storage.models import Consent, Contact, Identity
from bot.types import Capabilities

# what suppresses a prompt (``suppress:`` in prompts.yml) and the reason it is skipped with
HOLDS = (("handoff", "handoff_open"), ("complaint", "complaint_open"), ("low_csat", "low_csat"))


@dataclass
class Facts:
    """What the rules need about a batch of people."""

    reach: dict[int, list[Reach]] = field(default_factory=dict)
    unreachable: dict[int, list[str]] = field(default_factory=dict)  # identities we may not use
    consent: dict[int, dict[tuple[str, str], bool]] = field(default_factory=dict)
    handoff_open: set[int] = field(default_factory=set)
    low_csat: set[int] = field(default_factory=set)
    complaint_open: set[int] = field(default_factory=set)
    # marketing sends in the cap window: contact -> [(channel, sent_at)]
    sends: dict[int, list[tuple[str, datetime]]] = field(default_factory=dict)
    # what each channel with a sender can do (only those that push are written to)
    capabilities: dict[str, Capabilities] = field(default_factory=dict)


async def load_facts(
    session: AsyncSession,
    contact_ids: Sequence[int],
    now: datetime,
    config: PromptSettings,
    capabilities: dict[str, Capabilities],
) -> Facts:
    facts = Facts(capabilities=capabilities)
    if not contact_ids:
        return facts
    ids = list(contact_ids)
    for cid, channel, address, reachable, started, seen in await session.execute(
        select(
            Identity.contact_id,
            Identity.channel,
            Identity.address,
            Identity.reachable,
            Identity.started,
            Identity.last_seen_at,
        ).where(Identity.contact_id.in_(ids))
    ):
        if reachable and started and address:
            facts.reach.setdefault(cid, []).append(Reach(channel, address, seen))
        else:
            facts.unreachable.setdefault(cid, []).append(channel)
    for cid, channel, purpose, granted in await session.execute(
        select(Consent.contact_id, Consent.channel, Consent.purpose, Consent.granted).where(
            Consent.contact_id.in_(ids)
        )
    ):
        facts.consent.setdefault(cid, {})[(channel, purpose)] = bool(granted)
    await _handoffs(session, ids, now, config, facts)
    facts.complaint_open = set(
        (
            await session.execute(
                select(PromptSuppression.contact_id).where(
                    PromptSuppression.contact_id.in_(ids), PromptSuppression.closed_at.is_(None)
                )
            )
        ).scalars()
    )
    windows = [config.cap[1], *(w for _, w in config.caps_by_channel.values())]
    since = now - max(windows)
    for cid, channel, at in await session.execute(
        select(PromptSend.contact_id, PromptSend.channel, PromptSend.sent_at).where(
            PromptSend.contact_id.in_(ids),
            PromptSend.purpose == "marketing",
            PromptSend.sent_at >= since,
        )
    ):
        facts.sends.setdefault(cid, []).append((channel, at))
    return facts


async def _handoffs(
    session: AsyncSession, ids: list[int], now: datetime, config: PromptSettings, facts: Facts
) -> None:
    """Open handoffs and recent low CSAT scores, read from the handoff feature's table."""
    try:
        from bot.handoff.models import ACTIVE, Handoff
    except ImportError:  # the handoff feature is not installed
        return
    since = now - timedelta(days=config.csat_suppress_days)
    for cid, status, csat in await session.execute(
        select(Handoff.contact_id, Handoff.status, Handoff.csat).where(
            Handoff.contact_id.in_(ids),
            or_(
                Handoff.status.in_(ACTIVE),
                and_(
                    Handoff.csat < config.csat_suppress_below,
                    or_(Handoff.resolved_at >= since, Handoff.created_at >= since),
                ),
            ),
        )
    ):
        if status in ACTIVE:
            facts.handoff_open.add(cid)
        if csat is not None and csat < config.csat_suppress_below:
            facts.low_csat.add(cid)


class Rules:
    def __init__(self, config: PromptSettings, default_tz: str) -> None:
        self.config = config
        self.default_tz = default_tz
        self.cap = config.cap
        self.channel_caps = config.caps_by_channel
        self.quiet_week = config.quiet
        self._zones: dict[str | None, ZoneInfo] = {}

    def zone(self, name: str | None) -> ZoneInfo:
        z = self._zones.get(name)
        if z is None:
            from bot.prompts.triggers import zone

            z = self._zones[name] = zone(name, self.default_tz)
        return z

    def quiet(self, contact: Contact) -> QuietHours | None:
        """The quiet hours in the person's time zone (None: the shop has none)."""
        if self.quiet_week is None:
            return None
        return QuietHours(self.quiet_week, self.zone(contact.timezone))

    def decide(
        self,
        prompt: Prompt,
        contact: Contact,
        due_at: datetime,
        facts: Facts,
        now: datetime,
    ) -> Decision:
        cid = contact.id
        if now > due_at + prompt.expire_after:
            return Decision(SKIP, "expired")
        t = prompt.trigger
        if t.kind == "stage" and prompt.exit.stage_change and contact.lifecycle_stage != t.value:
            return Decision(CANCEL, "stage_changed")
        if prompt.audience and not prompt.audience.matches(contact, now):
            return Decision(SKIP, "audience")
        held = {"handoff": facts.handoff_open, "complaint": facts.complaint_open}
        held["low_csat"] = facts.low_csat
        hold = next((r for kind, r in HOLDS if kind in prompt.suppress and cid in held[kind]), None)
        options = facts.reach.get(cid, [])
        if prompt.channels:
            options = [r for r in options if r.channel in prompt.channels]
        d = choose_reach(
            options,
            Person(
                consents=facts.consent.get(cid, {}),
                opted_out=bool(contact.marketing_opt_out),
                preferred_channel=contact.preferred_channel,
                existing_customer=(contact.purchase_count or 0) > 0
                or contact.first_purchase_at is not None,
            ),
            purpose=prompt.purpose,
            capabilities=facts.capabilities,
            now=now,
            order=self.config.channel_order,
            hold=hold,
            window=self.quiet(contact) if prompt.quiet_hours else None,
            soft_opt_in=self.config.soft_opt_in,
        )
        if d.send and prompt.marketing:
            assert d.channel is not None
            capped = self.capped(cid, d.channel, facts, now)
            if capped:
                return Decision(SKIP, "capped", detail=capped)
        return d

    def capped(self, cid: int, channel: str, facts: Facts, now: datetime) -> str | None:
        sends = facts.sends.get(cid, [])
        limit, window = self.cap
        if sum(1 for _, at in sends if at >= now - window) >= limit:
            return f"{limit} marketing per {_days(window)}"
        cap = self.channel_caps.get(channel)
        if cap is not None:
            limit, window = cap
            if sum(1 for ch, at in sends if ch == channel and at >= now - window) >= limit:
                return f"{limit} on {channel} per {_days(window)}"
        return None


def _days(d: timedelta) -> str:
    from bot.content.durations import duration_text

    return duration_text(d)


def group_by_contact(items: Sequence[Any], key: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    for it in items:
        out[key(it)].append(it)
    return out
