"""The shipped stage machine (flows/lifecycle.yml): every rule, backwards moves, inactivity on
a controlled clock, late events, RFM and segments. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.content.conditions import Facts
from bot.lifecycle.config import find, load
from bot.settings import Settings
from bot.storage.models import Contact
from tests.bot.lifecycle.helpers import (
    T0,
    contact,
    days,
    ev,
    events,
    lifecycle_runtime,
    transitions,
)
from tests.conftest import REPO

SHIPPED = load(find(REPO))

# (case, [(event type, days after T0, properties)], final stage, the rule (on, to) it exercises)
CASES: list[tuple[str, list[tuple[str, float, dict[str, Any]]], str, tuple[str, str] | None]] = [
    ("sign-up", [("signed_up", 0, {})], "consideration", ("signed_up", "consideration")),
    (
        "newsletter",
        [("newsletter_subscribed", 0, {})],
        "consideration",
        ("newsletter_subscribed", "consideration"),
    ),
    ("cart", [("added_to_cart", 0, {})], "consideration", ("added_to_cart", "consideration")),
    ("lead", [("lead_captured", 0, {})], "consideration", ("lead_captured", "consideration")),
    (
        "first purchase",
        [("signed_up", 0, {}), ("purchased", 1, {"amount": 30})],
        "purchase",
        ("purchased", "purchase"),
    ),
    (
        "delivered",
        [("purchased", 0, {}), ("delivered", 2, {})],
        "onboarding",
        ("delivered", "onboarding"),
    ),
    (
        "used",
        [("purchased", 0, {}), ("delivered", 2, {}), ("used", 3, {})],
        "retention",
        ("used", "retention"),
    ),
    (
        "tutorial done",
        [("purchased", 0, {}), ("delivered", 2, {}), ("tutorial_completed", 2.1, {})],
        "retention",
        ("tutorial_completed", "retention"),
    ),
    (
        "second purchase",
        [("purchased", 0, {}), ("delivered", 2, {}), ("purchased", 5, {})],
        "retention",
        ("purchased", "retention"),
    ),
    (
        "subscribed",
        [("purchased", 0, {}), ("subscription_started", 0.1, {})],
        "retention",
        ("subscription_started", "retention"),
    ),
    (
        "good review",
        [
            ("purchased", 0, {}),
            ("delivered", 2, {}),
            ("used", 3, {}),
            ("review_submitted", 9, {"rating": 5}),
        ],
        "advocacy",
        ("review_submitted", "advocacy"),
    ),
    (
        "so-so review",
        [
            ("purchased", 0, {}),
            ("delivered", 2, {}),
            ("used", 3, {}),
            ("review_submitted", 9, {"rating": 3}),
        ],
        "retention",
        None,
    ),
    (
        "referral",
        [("purchased", 0, {}), ("delivered", 2, {}), ("used", 3, {}), ("referred_friend", 9, {})],
        "advocacy",
        ("referred_friend", "advocacy"),
    ),
    # backwards
    (
        "full refund",
        [("purchased", 0, {"amount": 30}), ("refunded", 1, {"amount": "30.00"})],
        "consideration",
        ("refunded", "consideration"),
    ),
    (
        "partial refund",
        [("purchased", 0, {"amount": 30}), ("refunded", 1, {"amount": 10})],
        "purchase",
        None,
    ),
    (
        "cancelled",
        [
            ("purchased", 0, {}),
            ("delivered", 2, {}),
            ("used", 3, {}),
            ("subscription_cancelled", 20, {}),
        ],
        "at-risk",
        ("subscription_cancelled", "at-risk"),
    ),
    (
        "bad review of an advocate",
        [
            ("purchased", 0, {}),
            ("delivered", 2, {}),
            ("used", 3, {}),
            ("review_submitted", 9, {"rating": 5}),
            ("review_submitted", 30, {"rating": 1}),
        ],
        "retention",
        ("review_submitted", "retention"),
    ),
    (
        "back after churn",
        [("purchased", 0, {}), ("delivered", 2, {}), ("used", 3, {}), ("purchased", 250, {})],
        "reactivated",
        ("purchased", "reactivated"),
    ),
    (
        "reactivated, delivered",
        [
            ("purchased", 0, {}),
            ("delivered", 2, {}),
            ("used", 3, {}),
            ("purchased", 250, {}),
            ("delivered", 252, {}),
        ],
        "retention",
        ("delivered", "retention"),
    ),
    (
        "at risk, used again",
        [
            ("purchased", 0, {}),
            ("delivered", 2, {}),
            ("used", 3, {}),
            ("subscription_cancelled", 20, {}),
            ("used", 25, {}),
        ],
        "retention",
        ("used", "retention"),
    ),
]


def test_the_cases_cover_every_shipped_transition() -> None:
    covered = {c[3] for c in CASES if c[3]}
    rules = {(t.on, t.to) for t in SHIPPED.transitions}
    assert rules - covered == set()


@pytest.mark.parametrize(("name", "steps", "final", "rule"), CASES, ids=[c[0] for c in CASES])
async def test_shipped_rule(
    name: str,
    steps: list[tuple[str, float, dict[str, Any]]],
    final: str,
    rule: tuple[str, str] | None,
    settings: Settings,
) -> None:
    async with lifecycle_runtime(settings) as (rt, svc, clock):
        before = None
        for i, (etype, offset, props) in enumerate(steps):
            at = T0 + days(offset)
            clock.set(at)
            before = (await contact(rt)).lifecycle_stage if i else "awareness"
            await svc.ingest([ev(f"e{i}", etype, at=at, **props)])
        c = await contact(rt)
        assert c.lifecycle_stage == final
        moves = await transitions(rt)
        if rule is None:
            assert c.lifecycle_stage == before  # the last event moved nobody
            return
        last = moves[-1]
        assert (last.to_stage, last.cause) == (rule[1], "event")
        assert last.rule is not None and last.rule.startswith(f"on {rule[0]}:")
        assert last.event_id is not None  # the event that caused it is kept with it


async def test_long_silence_before_an_event_passes_through_at_risk_and_churned(
    settings: Settings,
) -> None:
    """No sweep ran for months: the next event still records what happened meanwhile."""
    async with lifecycle_runtime(settings) as (rt, svc, clock):
        clock.set(T0)
        await svc.ingest(
            [
                ev("a", "purchased", amount=20),
                ev("b", "delivered", at=T0 + days(1)),
                ev("b2", "used", at=T0 + days(1)),
            ]
        )
        clock.set(T0 + days(300))
        await svc.ingest([ev("c", "purchased", at=T0 + days(300), amount=25)])
        path = [(t.from_stage, t.to_stage, t.cause) for t in await transitions(rt)]
        assert path[-3:] == [
            ("retention", "at-risk", "inactivity"),
            ("at-risk", "churned", "inactivity"),
            ("churned", "reactivated", "event"),
        ]
        at_risk = next(t for t in await transitions(rt) if t.to_stage == "at-risk")
        assert at_risk.occurred_at == T0 + days(1) + days(60)  # when it happened, not when seen


async def test_inactivity_sweep_with_a_controlled_clock(settings: Settings) -> None:
    async with lifecycle_runtime(settings) as (rt, svc, clock):
        # four customers, quiet for different lengths of time, and a prospect
        for user, quiet in (("fresh", 10), ("quiet", 61), ("gone", 200), ("edge", 59)):
            at = T0 - days(quiet)
            clock.set(at)
            await svc.ingest(
                [
                    ev(f"{user}-1", "purchased", user, at - timedelta(hours=2)),
                    ev(f"{user}-2", "delivered", user, at - timedelta(hours=1)),
                    ev(f"{user}-3", "used", user, at),
                ]
            )
        clock.set(T0 - days(91))
        await svc.ingest([ev("p-1", "signed_up", "prospect", T0 - days(91))])
        clock.set(T0)
        moved = await svc.sweep()
        stages = {
            u: (await contact(rt, u)).lifecycle_stage
            for u in ("fresh", "quiet", "gone", "edge", "prospect")
        }
        assert stages == {
            "fresh": "retention",
            "quiet": "at-risk",
            "gone": "churned",
            "edge": "retention",
            "prospect": "awareness",
        }
        assert sum(moved[r.describe()] for r in SHIPPED.inactivity) == 4  # quiet, gone x2, prospect
        gone = [(t.from_stage, t.to_stage, t.cause, t.rule) for t in await transitions(rt, "gone")]
        assert gone[-2:] == [
            ("retention", "at-risk", "inactivity", SHIPPED.inactivity[0].describe()),
            ("at-risk", "churned", "inactivity", SHIPPED.inactivity[1].describe()),
        ]
        # a second sweep at the same time changes nothing
        again = await svc.sweep()
        assert sum(again[r.describe()] for r in SHIPPED.inactivity) == 0
        # time passes: the edge case goes quiet too
        clock.set(T0 + days(2))
        await svc.sweep()
        assert (await contact(rt, "edge")).lifecycle_stage == "at-risk"
        # and a purchase brings the churned one back
        await svc.ingest([ev("gone-4", "purchased", "gone", T0 + days(2))])
        assert (await contact(rt, "gone")).lifecycle_stage == "reactivated"


async def test_chat_activity_keeps_a_customer_out_of_at_risk(settings: Settings) -> None:
    """Writing to the bot is activity too (the engine stamps last_activity_at)."""
    from bot.types import Inbound

    async with lifecycle_runtime(settings) as (rt, svc, clock):
        await svc.ingest(
            [ev("a", "purchased"), ev("b", "delivered"), ev("c", "used", at=T0 + days(1))]
        )
        async with rt.db.session() as s:
            c = (await s.execute(select(Contact))).scalar_one()
            c.last_activity_at = T0 + days(50)  # as a turn on that day would have
        clock.set(T0 + days(70))
        await svc.sweep()
        assert (await contact(rt)).lifecycle_stage == "retention"
        assert Inbound  # the engine path itself is covered by the flow tests


async def test_out_of_order_events_are_applied_in_time_order(settings: Settings) -> None:
    async with lifecycle_runtime(settings) as (rt, svc, clock):
        clock.set(T0 + days(3))
        # delivered (day 2) arrives before purchased (day 0)
        await svc.ingest([ev("d", "delivered", at=T0 + days(2))])
        assert (await contact(rt)).lifecycle_stage == "awareness"
        await svc.ingest([ev("p", "purchased", at=T0, amount=42)])
        c = await contact(rt)
        assert c.lifecycle_stage == "onboarding"
        assert (c.purchase_count, c.monetary_total) == (1, Decimal("42.00"))
        assert c.first_purchase_at == T0
        last = (await transitions(rt))[-1]
        assert (last.from_stage, last.to_stage, last.cause) == ("awareness", "onboarding", "replay")
        stored = {e.event_id: e.late for e in await events(rt)}
        assert stored == {"d": False, "p": True}


async def test_a_batch_in_any_order_and_duplicate_ids(settings: Settings) -> None:
    async with lifecycle_runtime(settings) as (rt, svc, clock):
        clock.set(T0 + days(3))
        batch = [
            ev("3", "used", at=T0 + days(3)),
            ev("1", "purchased", at=T0, amount=10),
            ev("2", "delivered", at=T0 + days(2)),
            ev("1", "purchased", at=T0, amount=10),
        ]
        r = await svc.ingest(batch)
        assert sorted(r.accepted) == ["1", "2", "3"] and r.duplicates == ["1"]
        again = await svc.ingest(batch[:2])
        assert again.accepted == [] and sorted(again.duplicates) == ["1", "3"]
        c = await contact(rt)
        assert (c.lifecycle_stage, c.purchase_count) == ("retention", 1)
        assert [t.to_stage for t in await transitions(rt)] == [
            "purchase",
            "onboarding",
            "retention",
        ]


async def test_rfm_figures_and_segments_agree_in_sql_and_python(settings: Settings) -> None:
    async with lifecycle_runtime(settings) as (rt, svc, clock):
        plan = {
            "never": [("signed_up", 0, 0)],
            "once": [("purchased", 0, 35)],
            "loyal": [("purchased", -200, 120), ("purchased", -100, 80), ("purchased", -20, 300)],
            "lapsed": [("purchased", -400, 60), ("purchased", -380, 1200)],
        }
        for user, items in plan.items():
            for i, (etype, offset, amount) in enumerate(items):
                at = T0 + days(offset)
                clock.set(at)
                await svc.ingest([ev(f"{user}{i}", etype, user, at, amount=amount)])
        clock.set(T0)
        await svc.sweep()
        now = clock.now()
        scores = {}
        async with rt.db.session() as s:
            people = list((await s.execute(select(Contact).order_by(Contact.id))).scalars())
            for c in people:
                scores[c.user_id] = svc.config.rfm.scores(c, now)
            for name, cond in svc.config.segments.items():
                in_sql = set(
                    (await s.execute(select(Contact.user_id).where(cond.sql(now)))).scalars()
                )
                in_py = {c.user_id for c in people if cond.eval(Facts(c, now))}
                assert in_sql == in_py, name
            members = {
                name: {c.user_id for c in people if cond.eval(Facts(c, now))}
                for name, cond in svc.config.segments.items()
            }
        assert scores["never"] == (0, 0, 0)
        assert scores["once"] == (5, 1, 1)
        assert scores["loyal"] == (5, 3, 4)  # 3 purchases, EUR 500
        assert scores["lapsed"] == (1, 2, 5)
        assert members["prospect"] == {"never"}
        assert members["repeat"] == {"loyal", "lapsed"}
        assert members["one_time"] == {"once"}
        assert members["loyal"] == {"loyal"}
        assert "lapsed" in members["unengaged"] and "once" in members["engaged"]


async def test_signals_are_sent_inside_the_transaction(settings: Settings) -> None:
    async with lifecycle_runtime(settings) as (rt, svc, clock):
        got: list[tuple[str, Any]] = []

        async def on_event(*, session: Any, contact: Contact, event: Any, **_: Any) -> None:
            assert session.in_transaction()
            got.append(("event", event.type))

        async def on_stage(
            *, session: Any, contact: Contact, old: str, new: str, cause: str, now: Any, **_: Any
        ) -> None:
            assert contact.lifecycle_stage == new
            got.append(("stage", (old, new, cause)))

        rt.signals.event_recorded.connect(on_event)
        rt.signals.stage_changed.connect(on_stage)
        await svc.ingest([ev("1", "purchased"), ev("2", "delivered", at=T0 + days(1))])
        clock.set(T0 + days(100))
        await svc.sweep()
        assert got == [
            ("stage", ("awareness", "purchase", "event")),
            ("event", "purchased"),
            ("stage", ("purchase", "onboarding", "event")),
            ("event", "delivered"),
            ("stage", ("onboarding", "at-risk", "inactivity")),
        ]
