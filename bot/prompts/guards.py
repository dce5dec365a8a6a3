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
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.prompts.config import PromptSettings
from bot.prompts.definitions import Prompt
from bot.prompts.models import PromptSend, PromptSuppression
from bot.storage.models import Consent, Contact, Identity

PROACTIVE_CHANNELS = ("telegram", "slack", "web")


@dataclass(frozen=True, slots=True)
class Reach:
    channel: str
    address: str
    last_seen_at: datetime | None


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


async def load_facts(
    session: AsyncSession, contact_ids: Sequence[int], now: datetime, config: PromptSettings
) -> Facts:
    facts = Facts()
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
        ).where(Identity.contact_id.in_(ids), Identity.channel.in_(PROACTIVE_CHANNELS))
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


@dataclass(frozen=True, slots=True)
class Decision:
    """``send`` (with channel/address), ``skip`` / ``cancel`` (with reason), ``defer``."""

    outcome: str
    reason: str | None = None
    channel: str | None = None
    address: str | None = None
    until: datetime | None = None
    detail: str | None = None
    soft_opt_in: bool = False


def quiet_until(local: datetime, quiet: tuple[time, time] | None) -> datetime | None:
    """The end of the quiet hours ``local`` falls in (same zone), or None if not quiet."""
    if quiet is None:
        return None
    start, end = quiet
    t = local.timetz().replace(tzinfo=None)
    day = local.date()
    tz = local.tzinfo
    if start > end:  # wraps midnight, e.g. 21:00-08:00
        if t >= start:
            return datetime.combine(day + timedelta(days=1), end, tzinfo=tz)
        if t < end:
            return datetime.combine(day, end, tzinfo=tz)
        return None
    if start <= t < end:
        return datetime.combine(day, end, tzinfo=tz)
    return None


class Rules:
    def __init__(self, config: PromptSettings, default_tz: str) -> None:
        self.config = config
        self.default_tz = default_tz
        self.cap = config.cap
        self.channel_caps = config.caps_by_channel
        self.quiet = config.quiet
        self._zones: dict[str | None, ZoneInfo] = {}

    def zone(self, name: str | None) -> ZoneInfo:
        z = self._zones.get(name)
        if z is None:
            from bot.prompts.triggers import zone

            z = self._zones[name] = zone(name, self.default_tz)
        return z

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
            return Decision("skip", "expired")
        t = prompt.trigger
        if t.kind == "stage" and prompt.exit_on_stage_change and contact.lifecycle_stage != t.value:
            return Decision("cancel", "stage_changed")
        if prompt.audience and not prompt.audience.matches(contact, now):
            return Decision("skip", "audience")
        if prompt.marketing and contact.marketing_opt_out:
            return Decision("skip", "opted_out")
        if "handoff" in prompt.suppress and cid in facts.handoff_open:
            return Decision("skip", "handoff_open")
        if "complaint" in prompt.suppress and cid in facts.complaint_open:
            return Decision("skip", "complaint_open")
        if "low_csat" in prompt.suppress and cid in facts.low_csat:
            return Decision("skip", "low_csat")
        choice = self.channel(prompt, contact, facts)
        if isinstance(choice, Decision):
            return choice
        reach, soft = choice
        if prompt.quiet_hours:
            local = now.astimezone(self.zone(contact.timezone))
            until = quiet_until(local, self.quiet)
            if until is not None:
                return Decision("defer", "quiet_hours", until=until.astimezone(now.tzinfo))
        if prompt.marketing:
            capped = self.capped(cid, reach.channel, facts, now)
            if capped:
                return Decision("skip", "capped", detail=capped)
        return Decision("send", channel=reach.channel, address=reach.address, soft_opt_in=soft)

    def channel(
        self, prompt: Prompt, contact: Contact, facts: Facts
    ) -> tuple[Reach, bool] | Decision:
        """The channel to write on: preferred first, then the configured order; reachable
        (Telegram: started), allowed for the prompt, with consent for its purpose."""
        options = facts.reach.get(contact.id, [])
        if prompt.channels:
            options = [r for r in options if r.channel in prompt.channels]
        if not options:
            return Decision("skip", "unreachable")
        order = [c for c in [contact.preferred_channel, *self.config.channel_order] if c]

        def rank(r: Reach) -> tuple[int, float]:
            pos = order.index(r.channel) if r.channel in order else len(order)
            seen = r.last_seen_at.timestamp() if r.last_seen_at else 0.0
            return pos, -seen

        consents = facts.consent.get(contact.id, {})
        for r in sorted(options, key=rank):
            ok, soft = self.consented(prompt.purpose, r.channel, contact, consents)
            if ok:
                return r, soft
        return Decision("skip", "no_consent")

    def consented(
        self,
        purpose: str,
        channel: str,
        contact: Contact,
        consents: dict[tuple[str, str], bool],
    ) -> tuple[bool, bool]:
        """(allowed, by soft opt-in). A channel's own answer beats the ``*`` answer."""
        given = consents.get((channel, purpose), consents.get(("*", purpose)))
        if purpose == "service":
            return given is not False, False
        if given is not None:
            return given, False
        existing_customer = (
            contact.purchase_count or 0
        ) > 0 or contact.first_purchase_at is not None
        if self.config.soft_opt_in and existing_customer:
            return True, True
        return False, False

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
