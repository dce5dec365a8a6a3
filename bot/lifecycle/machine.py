"""The stage machine as plain functions over a :class:`Contact` (the live path, replays of
out-of-order events and ``concierge simulate`` all use them).

For each event, in ``occurred_at`` order:
1. inactivity first: if the person had been idle long enough before this event, the inactivity
   rules move them (at-risk, churned...) at the time they would have;
2. RFM and activity: purchases count and add up, refunds subtract, activity resets the clock;
3. the first transition rule of ``flows/lifecycle.yml`` that fits moves them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.content.conditions import Facts
from bot.lifecycle.config import LifecycleConfig
from bot.storage.models import Contact


@dataclass(frozen=True)
class Move:
    old: str
    new: str
    cause: str  # event | inactivity | replay
    rule: str
    at: datetime
    event_key: str | None = None  # the shop's event id that caused it


def amount_of(props: Mapping[str, Any], key: str) -> Decimal:
    raw = props.get(key)
    if raw is None or isinstance(raw, bool):
        return Decimal(0)
    try:
        value = Decimal(str(raw).replace(",", ".")) if isinstance(raw, str) else Decimal(raw)
    except (InvalidOperation, ValueError, TypeError):
        return Decimal(0)
    return value.quantize(Decimal("0.01")) if value.is_finite() else Decimal(0)


def idle_moves(cfg: LifecycleConfig, c: Contact, until: datetime) -> list[Move]:
    """Inactivity rules, in file order (so at-risk -> churned chains), up to ``until``."""
    since = c.last_activity_at
    if since is None:
        return []
    moves: list[Move] = []
    for rule in cfg.inactivity:
        if c.lifecycle_stage in rule.sources and until - since >= rule.after:
            at = since + rule.after
            if c.stage_entered_at is not None and at < c.stage_entered_at:
                at = c.stage_entered_at
            moves.append(Move(c.lifecycle_stage, rule.to, "inactivity", rule.describe(), at))
            c.lifecycle_stage = rule.to
            c.stage_entered_at = at
    return moves


def apply_event(
    cfg: LifecycleConfig,
    c: Contact,
    etype: str,
    props: Mapping[str, Any],
    at: datetime,
    *,
    key: str | None = None,
    stage: bool = True,
    event_facts: Mapping[str, Any] | None = None,
) -> list[Move]:
    """Apply one event to ``c`` (in place); returns the stage moves it caused."""
    moves = idle_moves(cfg, c, at) if stage else []
    info = cfg.event(etype)
    if info.purchase:
        c.purchase_count = (c.purchase_count or 0) + 1
        c.monetary_total = (c.monetary_total or Decimal(0)) + amount_of(props, cfg.amount_property)
        c.first_purchase_at = min(filter(None, (c.first_purchase_at, at)))
        c.last_purchase_at = max(filter(None, (c.last_purchase_at, at)))
    if info.refund:
        total = (c.monetary_total or Decimal(0)) - amount_of(props, cfg.amount_property)
        c.monetary_total = max(total, Decimal(0))
    if info.activity and (c.last_activity_at is None or at > c.last_activity_at):
        c.last_activity_at = at
    if not stage:
        return moves
    facts = Facts(c, at, {}, dict(event_facts if event_facts is not None else props))
    for t in cfg.transitions:
        if t.on == etype and t.applies(c.lifecycle_stage) and t.when.eval(facts):
            moves.append(Move(c.lifecycle_stage, t.to, "event", t.describe(), at, key))
            c.lifecycle_stage = t.to
            c.stage_entered_at = at
            break
    return moves


def scratch_contact(cfg: LifecycleConfig, like: Contact) -> Contact:
    """A contact with no history, to replay events on (never added to a session)."""
    return Contact(
        id=like.id,
        user_id=like.user_id,
        lifecycle_stage=cfg.initial,
        stage_entered_at=None,
        purchase_count=0,
        monetary_total=Decimal(0),
        first_purchase_at=None,
        last_purchase_at=None,
        last_activity_at=None,
        attributes=dict(like.attributes or {}),
        language=like.language,
        marketing_opt_out=like.marketing_opt_out,
        created_at=like.created_at,
        updated_at=like.updated_at,
    )


@dataclass(frozen=True)
class PastEvent:
    key: str
    type: str
    occurred_at: datetime
    properties: Mapping[str, Any]


def replay(
    cfg: LifecycleConfig, like: Contact, events: Iterable[PastEvent]
) -> tuple[Contact, list[Move]]:
    """Every event again in ``occurred_at`` order, from the initial stage."""
    c = scratch_contact(cfg, like)
    moves: list[Move] = []
    for e in sorted(events, key=lambda e: (e.occurred_at, e.key)):
        moves += apply_event(cfg, c, e.type, e.properties, e.occurred_at, key=e.key)
    return c, moves
