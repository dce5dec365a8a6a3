"""Experiments: stable groups, the holdout receives nothing and is counted, lift in the report."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.prompts.definitions import Goal, Prompt, Trigger, Variant
from bot.prompts.experiments import assign, difference_ci, wilson
from bot.prompts.models import PromptAssignment, PromptConversion
from bot.prompts.report import format_report, prompt_report
from bot.prompts.service import PromptService
from bot.runtime import Runtime
from tests.bot.prompts.conftest import (
    SetClock,
    add_contact,
    outbox,
    shop_event,
    skips,
    step,
    use_prompts,
)

OFFER = """
prompts:
  - id: comeback
    purpose: marketing
    trigger: {event: lapsed}
    variants:
      - {id: a, response: utter_prompt_miss_you_a}
      - {id: b, response: utter_prompt_miss_you_b, weight: 3}
    holdout: 0.3
    goal: {event: purchased, within: 14d}
"""


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def test_assignment_is_stable_and_follows_the_shares() -> None:
    p = Prompt(
        id="x",
        trigger=Trigger(event="e"),
        variants=(
            Variant(id="a", response="utter_a", weight=1),
            Variant(id="b", response="utter_b", weight=3),
        ),
        holdout=0.2,
        goal=Goal(event="purchased"),
    )
    groups = Counter(assign(p, cid, "salt") for cid in range(20_000))
    assert abs(groups["holdout"] / 20_000 - 0.2) < 0.015
    assert abs(groups["b"] / (groups["a"] + groups["b"]) - 0.75) < 0.015
    assert [assign(p, cid, "salt") for cid in range(50)] == [
        assign(p, cid, "salt") for cid in range(50)
    ]
    # another prompt (or salt) shuffles people independently
    other = Prompt(id="y", trigger=p.trigger, variants=p.variants, holdout=0.2, goal=p.goal)
    same = sum(assign(p, c, "salt") == assign(other, c, "salt") for c in range(5000))
    assert same < 0.6 * 5000


def test_intervals() -> None:
    w = wilson(0, 10)
    assert w.low == 0.0 and 0.25 < w.high < 0.32  # Wilson: 0/10 -> [0, 0.278]
    ci = difference_ci(60, 100, 30, 100)
    assert ci is not None and 0.16 < ci.low < 0.18 and 0.42 < ci.high < 0.44
    assert difference_ci(1, 10, 0, 0) is None


async def test_holdout_receives_nothing_and_is_counted_with_conversions_and_lift(
    rt: Runtime, svc: PromptService, clock: SetClock, tmp_path: Path
) -> None:
    use_prompts(svc, tmp_path, OFFER)
    people = [await add_contact(rt) for _ in range(60)]
    prompt = svc.book.prompts["comeback"]
    expected = {cid: assign(prompt, cid, svc.config.salt) for cid in people}
    held = {cid for cid, g in expected.items() if g == "holdout"}
    assert 5 < len(held) < 35
    clock.set(utc(5, 11))
    for cid in people:
        await shop_event(rt, cid, "lapsed")
    stats = await step(svc, clock, utc(5, 11, 1))
    assert stats.held == len(held) and stats.sent == len(people) - len(held)
    rows = await outbox(rt)
    assert {r.contact_id for r in rows} == set(people) - held  # the holdout gets nothing
    for r in rows:  # and each treated person the wording of their variant
        want = (
            "utter_prompt_miss_you_a"
            if expected[r.contact_id] == "a"
            else "utter_prompt_miss_you_b"
        )
        assert r.payload["text"].startswith(rt.responses.text(want, "en", first_name="Alex")[:20])
    assert {k.contact_id for k in await skips(rt) if k.reason == "holdout"} == held
    async with rt.db.session() as s:
        recorded = {
            a.contact_id: a.variant for a in (await s.execute(select(PromptAssignment))).scalars()
        }
    assert recorded == expected
    # purchases: every holdout person, and the first 10 treated; one purchase far too late
    treated = [c for c in people if c not in held]
    clock.set(utc(10, 12))
    for cid in [*held, *treated[:10]]:
        await shop_event(rt, cid, "purchased")
    clock.set(utc(5, 11) + timedelta(days=20))
    await shop_event(rt, treated[10], "purchased")  # outside the 14-day window
    async with rt.db.session() as s:
        conv = list((await s.execute(select(PromptConversion))).scalars())
        figures = await prompt_report(s)
    assert len(conv) == len(held) + 10
    [f] = figures
    assert f.holdout.exposed == len(held) and f.holdout.converted == len(held)
    assert f.treated.exposed == len(treated) and f.treated.converted == 10
    assert f.lift is not None and f.lift == pytest.approx(10 / len(treated) - 1.0)
    ci = f.lift_ci
    assert ci is not None and ci.low < f.lift < ci.high < 0
    text = format_report(figures)
    assert "comeback" in text and "holdout" in text and "lift" in text and "95% CI" in text
    assert f"skipped     {len(held)}  (holdout {len(held)})" in text


def test_report_command_prints_the_figures(sqlite_url: str, tmp_path: Path) -> None:
    """The CLI on an empty database, then on one with a send: text and JSON."""
    import asyncio

    from bot.prompts.models import PromptAction, PromptSend
    from bot.storage.db import Database
    from bot.storage.models import Contact
    from channels.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["report", "prompts", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "No prompts were sent" in result.output

    async def seed() -> None:
        db = Database(sqlite_url)
        now = datetime.now(UTC)
        async with db.session() as s:
            c = Contact(created_at=now, updated_at=now, attributes={})
            s.add(c)
            await s.flush()
            a = PromptAction(
                contact_id=c.id,
                prompt_id="review_request",
                instance_key="ev:1",
                due_at=now,
                status="sent",
                created_at=now,
                updated_at=now,
                context={},
            )
            s.add(a)
            await s.flush()
            s.add(
                PromptSend(
                    action_id=a.id,
                    contact_id=c.id,
                    prompt_id="review_request",
                    instance_key="ev:1",
                    variant="a",
                    purpose="marketing",
                    channel="telegram",
                    sent_at=now,
                )
            )
        await db.dispose()

    asyncio.run(seed())
    result = runner.invoke(app, ["report", "prompts", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "review_request" in result.output and "telegram 1" in result.output
    result = runner.invoke(
        app, ["report", "prompts", "--database-url", sqlite_url, "--json", "--since", "1d"]
    )
    assert result.exit_code == 0, result.output
    import json

    [row] = json.loads(result.output)
    assert row["prompt"] == "review_request" and row["sent"] == 1
    result = runner.invoke(
        app, ["report", "prompts", "--database-url", sqlite_url, "--since", "soon"]
    )
    assert result.exit_code != 0 and "not a duration" in result.output
