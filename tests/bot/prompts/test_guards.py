"""The prompt guard rails (bot/prompts/guards.py) decided in memory: the facts of a batch in,
one Decision per due prompt out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.outreach.reach import Reach
from bot.prompts.config import PromptSettings
from bot.prompts.guards import Facts, Rules
from bot.prompts.service import PromptService
from bot.storage.models import Contact
from bot.types import Capabilities

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # 11:00 in Berlin
PUSH = {"telegram": Capabilities(push=True), "web": Capabilities(push=True)}


def person(**kw: object) -> Contact:
    base: dict[str, object] = dict(
        id=1, lifecycle_stage="retention", purchase_count=1, marketing_opt_out=False,
        timezone="Europe/Berlin", attributes={},
    )  # fmt: skip
    base.update(kw)
    return Contact(**base)


def facts(**kw: object) -> Facts:
    f = Facts(reach={1: [Reach("telegram", "t1", NOW - timedelta(days=1))]}, capabilities=PUSH)
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def rules(**settings: object) -> Rules:
    return Rules(PromptSettings(_env_file=None, **settings), "Europe/Berlin")  # type: ignore[call-arg]


def test_a_due_marketing_prompt_goes_to_a_customer_by_soft_opt_in(svc: PromptService) -> None:
    p = svc.book.prompts["review_request"]
    d = rules().decide(p, person(), NOW, facts(), NOW)
    assert (d.outcome, d.channel, d.address, d.soft_opt_in) == ("send", "telegram", "t1", True)


def test_each_guard_rail_names_its_reason(svc: PromptService) -> None:
    p = svc.book.prompts["review_request"]
    r = rules()
    assert r.decide(p, person(), NOW - p.expire_after * 2, facts(), NOW).reason == "expired"
    assert r.decide(p, person(marketing_opt_out=True), NOW, facts(), NOW).reason == "opted_out"
    assert r.decide(p, person(), NOW, facts(handoff_open={1}), NOW).reason == "handoff_open"
    assert r.decide(p, person(purchase_count=0), NOW, facts(), NOW).reason == "no_consent"
    no_push = facts(capabilities={"telegram": Capabilities(push=False)})
    assert r.decide(p, person(), NOW, no_push, NOW).reason == "unreachable"
    capped = facts(sends={1: [("telegram", NOW - timedelta(hours=1))] * 2})
    d = r.decide(p, person(), NOW, capped, NOW)
    assert (d.reason, d.detail) == ("capped", "2 marketing per 1w")


def test_quiet_hours_defer_to_the_morning_in_the_persons_zone(svc: PromptService) -> None:
    p = svc.book.prompts["review_request"]
    night = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)  # 23:00 in Berlin
    d = rules().decide(p, person(), night, facts(), night)
    assert (d.outcome, d.reason) == ("defer", "quiet_hours")
    assert d.until == datetime(2026, 1, 6, 7, 0, tzinfo=UTC)  # 08:00 in Berlin
    assert rules(quiet_hours="off").decide(p, person(), night, facts(), night).outcome == "send"
