"""The conversation charts: ``conversations`` a day, ``containment`` (the ones no person was
asked into) and the assistant's turns by ``outcomes``. Closed days are read from the roll-ups,
the open rest of the range counted live."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.models import Handoff
from bot.stats.chart import Chart
from bot.stats.filters import Filters
from bot.stats.query import handoff_filters, iso, memo, message_filters, ratio, rounded, utc_day
from bot.stats.rollups import stored
from bot.stats.turns import OUTCOMES, turns
from bot.storage.models import Message

EXACT_TOTAL_DAYS = 92  # longer ranges: the conversations of each day added up


async def _conversations_by_day(s: AsyncSession, f: Filters) -> dict[str, tuple[int, int]]:
    async def compute() -> dict[str, tuple[int, int]]:
        days, live = await stored(s, f, ["conversations", "customer_messages"], summed=False)
        out = {d: (c["conversations"], c["customer_messages"]) for d, c in days.items()}
        if live is not None:
            d = utc_day(s, Message.created_at).label("d")
            q = (
                select(d, func.count(distinct(Message.conversation_id)), func.count())
                .where(Message.direction == "in", *message_filters(live))
                .group_by(d)
            )
            out.update({iso(day): (int(c), int(m)) for day, c, m in await s.execute(q)})
        return out

    return await memo(s, ("conversations_by_day", f), compute)


async def conversations(s: AsyncSession, f: Filters) -> Chart:
    by_day = await _conversations_by_day(s, f)
    rows: list[list[Any]] = [[d, *by_day.get(d, (0, 0))] for d in f.days]
    if len(f.days) <= EXACT_TOTAL_DAYS:  # a conversation of several days counts once
        total = (
            await s.execute(
                select(func.count(distinct(Message.conversation_id))).where(
                    Message.direction == "in", *message_filters(f)
                )
            )
        ).scalar_one()
    else:
        total = sum(r[1] for r in rows)
    return Chart(
        "conversations",
        "Conversations per day",
        ["day", "conversations", "customer_messages"],
        rows,
        kind="line",
        summary={"conversations": int(total), "customer_messages": sum(r[2] for r in rows)},
    )


async def containment(s: AsyncSession, f: Filters) -> Chart:
    by_day = await _conversations_by_day(s, f)
    d = utc_day(s, Handoff.created_at).label("d")
    hq = select(d, func.count(distinct(Handoff.conversation_id))).where(*handoff_filters(f))
    handed = {iso(day): int(n) for day, n in await s.execute(hq.group_by(d))}
    rows: list[list[Any]] = []
    for day in f.days:
        conv = by_day.get(day, (0, 0))[0]
        h = min(handed.get(day, 0), conv) if conv else 0
        rows.append([day, conv, conv - h, h, rounded(ratio(conv - h, conv), 4)])
    conv_total = sum(r[1] for r in rows)
    contained = sum(r[2] for r in rows)
    return Chart(
        "containment",
        "Containment: conversations answered without a person",
        ["day", "conversations", "contained", "handed_off", "containment_rate"],
        rows,
        kind="stacked",
        note="A conversation counts once a day; contained: no handoff opened that day.",
        summary={
            "conversation_days": conv_total,
            "contained": contained,
            "containment_rate": rounded(ratio(contained, conv_total), 4),
        },
    )


async def outcomes(s: AsyncSession, f: Filters) -> Chart:
    days, live = await stored(s, f, [f"turns_{o}" for o in OUTCOMES], summed=True)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for day, c in days.items():
        for o in OUTCOMES:
            counts[day][o] = c[f"turns_{o}"]
    if live is not None:
        t = turns(s, live)
        q = select(t.c.d, t.c.outcome, func.count()).group_by(t.c.d, t.c.outcome)
        for day, oc, n in await s.execute(q):
            counts[iso(day)][str(oc)] += int(n)
    rows: list[list[Any]] = [[day, *(counts[day][o] for o in OUTCOMES)] for day in f.days]
    totals = {o: sum(int(r[i + 1]) for r in rows) for i, o in enumerate(OUTCOMES)}
    n = sum(totals.values())
    return Chart(
        "outcomes",
        "The assistant's turns: answered, clarified, fallback, handed off",
        ["day", *OUTCOMES],
        rows,
        kind="stacked",
        summary={
            **totals,
            "turns": n,
            **{f"{o}_share": rounded(ratio(totals[o], n), 4) for o in OUTCOMES},
        },
    )
