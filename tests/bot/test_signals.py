"""Signals: a batch send reaches batch receivers once and the others once per item."""

from __future__ import annotations

from typing import Any

from bot.signals import Signal


async def test_send_many_batches_for_batch_receivers_and_items_for_the_rest() -> None:
    sig = Signal("stage_changed")
    single: list[tuple[Any, ...]] = []
    batched: list[tuple[Any, ...]] = []

    async def one(**kw: Any) -> None:
        single.append((kw["contact"], kw["new"]))

    async def plain(**kw: Any) -> None:
        batched.append(("single", kw["contact"]))

    async def many(**kw: Any) -> None:
        batched.append(("batch", [i["contact"] for i in kw["items"]], kw["new"]))

    sig.connect(one)
    sig.connect(plain, many=many)
    await sig.send_many([{"contact": 1}, {"contact": 2}], new="at-risk")
    assert single == [(1, "at-risk"), (2, "at-risk")]
    assert batched == [("batch", [1, 2], "at-risk")]
    await sig.send_many([], new="x")  # nothing to tell: nobody is called
    await sig.send(contact=3, new="churned")  # a single send takes the plain form
    assert batched[-1] == ("single", 3) and single[-1] == (3, "churned")
    sig.disconnect(plain)
    await sig.send_many([{"contact": 4}], new="y")
    assert batched[-1] == ("single", 3)


async def test_a_signal_of_the_runtime_sends_keyword_arguments_to_every_receiver() -> None:
    from datetime import UTC, datetime

    from bot.signals import Signals

    signals = Signals()
    got: list[dict[str, Any]] = []

    async def receiver(**kw: Any) -> None:
        got.append(kw)

    signals.opted_out.connect(receiver)
    assert signals.opted_out.listened and not signals.stage_changed.listened
    now = datetime(2026, 1, 5, tzinfo=UTC)
    await signals.opted_out.send(session=None, contact=None, channel="telegram", now=now)  # type: ignore[arg-type]
    assert got == [{"session": None, "contact": None, "channel": "telegram", "now": now}]
    signals.opted_out.disconnect(receiver)
    await signals.opted_out.send(session=None, contact=None, channel="web", now=now)  # type: ignore[arg-type]
    assert len(got) == 1
