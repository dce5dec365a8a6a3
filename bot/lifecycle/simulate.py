"""``concierge simulate``: one person's timeline from a file of events, on a throw-away SQLite
database and a clock that jumps from one moment to the next. Nothing is sent anywhere.

The person gets a chat identity on one channel (web unless told), so flows and prompts "write"
to them; what they would receive is read back from the outbox, in their language (an event's
``properties.language``). Flows that ask something wait for an answer that never comes (the
timeline says so). The prompt scheduler runs whenever a prompt is due, on the same clock, and
the timeline shows each prompt scheduled, sent, deferred or skipped with the reason. The
inactivity sweep and the prompt sweeps run once a simulated day.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import ManualClock
from bot.content.conditions import Facts
from bot.lifecycle.models import DONE, WAITING, FlowState, StageTransition
from bot.lifecycle.schema import EventIn, parse_one
from bot.lifecycle.service import service_of
from bot.settings import Settings
from bot.storage.models import Contact, Identity, OutboxMessage
from bot.types import Capabilities, Delivery, PermanentError, SendResult

CHANNEL = "web"
M = TypeVar("M", StageTransition, OutboxMessage)


class _Simulated:
    """The simulated person's channel: it can write first; nothing ever leaves (no worker)."""

    capabilities = Capabilities(push=True, buttons=True)

    def __init__(self, channel: str) -> None:
        self.channel = channel

    async def send(self, delivery: Delivery) -> SendResult:
        raise PermanentError("a simulation sends nothing")


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # event | stage | flow | message | note
    text: str


class SimulationError(Exception):
    pass


def read_events(path: Path, user: str) -> list[EventIn]:
    """The user's events from a JSONL file (``user_id`` may be left out); file:line errors."""
    out: list[EventIn] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise SimulationError(f"{path}: cannot read: {e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise SimulationError(f"{path}:{n}: not JSON: {e.msg}") from None
        if isinstance(raw, dict):
            raw.setdefault("user_id", user)
            raw.setdefault("id", f"sim-{n}")
        ev, errors = parse_one(raw)
        if ev is None:
            first = errors[0]
            raise SimulationError(f"{path}:{n}: {first['field']}: {first['message']}")
        if ev.user_id == user:
            out.append(ev)
    return sorted(out, key=lambda e: e.occurred_at)


async def simulate(
    settings: Settings,
    user: str,
    events: list[EventIn],
    days: int,
    start: datetime | None = None,
    channel: str = CHANNEL,
) -> tuple[list[Entry], dict[str, Any]]:
    """Run the simulation; returns the timeline and the person's figures at the end."""
    from bot.runtime import Runtime

    begin = start or (events[0].occurred_at if events else datetime.now().astimezone())
    end = begin + timedelta(days=days)
    clock = ManualClock(begin)
    with tempfile.TemporaryDirectory(prefix="concierge-sim-") as tmp:
        sim_settings = settings.model_copy(
            update={"database_url": f"sqlite+aiosqlite:///{Path(tmp) / 'sim.db'}"}
        )
        runtime = Runtime(sim_settings, clock=clock, start_worker=False)
        runtime.add_sender(_Simulated(channel))
        await runtime.db.upgrade()
        try:
            return await _run(runtime, clock, user, events, end, channel)
        finally:
            await runtime.db.dispose()


async def _run(
    runtime: Any,
    clock: ManualClock,
    user: str,
    events: list[EventIn],
    end: datetime,
    channel: str,
) -> tuple[list[Entry], dict[str, Any]]:
    from bot.prompts import service_of as prompts_of

    svc = service_of(runtime)
    try:
        prompts = prompts_of(runtime)
    except LookupError:  # CONCIERGE_PROMPTS_ENABLED=false
        prompts = None
    timeline: list[Entry] = []
    now = clock.now()
    async with runtime.db.session() as s:
        c = Contact(
            user_id=user,
            lifecycle_stage=svc.config.initial,
            purchase_count=0,
            attributes={},
            marketing_opt_out=False,
            created_at=now,
            updated_at=now,
        )
        s.add(c)
        await s.flush()
        s.add(
            Identity(
                contact_id=c.id,
                channel=channel,
                external_id=user,
                address=user,
                started=True,
                reachable=True,
                created_at=now,
                last_seen_at=now,
            )
        )
    seen = _Seen(runtime.settings.default_timezone)
    pending = list(events)
    next_sweep = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    while True:
        due = await _next_due(runtime)
        prompt_due = await _next_prompt(runtime) if prompts is not None else None
        candidates = [
            t
            for t in (pending[0].occurred_at if pending else None, due, prompt_due, next_sweep)
            if t
        ]
        when = min(candidates)
        if when > end:
            break
        clock.set(max(when, clock.now()))
        now = clock.now()
        if pending and pending[0].occurred_at <= now:
            batch = []
            while pending and pending[0].occurred_at <= now:
                batch.append(pending.pop(0))
            for e in batch:
                props = json.dumps(e.properties, ensure_ascii=False) if e.properties else ""
                timeline.append(Entry(e.occurred_at, "event", f"{e.type} {props}".strip()))
            await svc.ingest(batch, source="import", now=now)
        elif due is not None and due <= now:
            await svc.runner.run_due(now)
        elif prompts is not None and prompt_due is not None and prompt_due <= now:
            await prompts.process_due(now)
        else:
            await svc.sweep(now)
            if prompts is not None:
                await prompts.sweep(now)
            next_sweep += timedelta(days=1)
        timeline += await seen.collect(runtime)
    for e in pending:
        timeline.append(Entry(e.occurred_at, "note", f"event {e.type} is after the last day"))
    clock.set(end)
    figures = await _figures(runtime, user, end)
    timeline += await seen.collect(runtime)
    return timeline, figures


async def _earliest(runtime: Any, due_at: Any, *conds: Any) -> datetime | None:
    """The earliest ``due_at`` of the rows where ``conds`` hold."""
    async with runtime.db.session() as s:
        due: datetime | None = (
            await s.execute(select(due_at).where(*conds).order_by(due_at).limit(1))
        ).scalar_one_or_none()
    return due


async def _next_due(runtime: Any) -> datetime | None:
    return await _earliest(runtime, FlowState.due_at, FlowState.status == WAITING)


async def _next_prompt(runtime: Any) -> datetime | None:
    from bot.prompts.models import PENDING, PromptAction

    return await _earliest(runtime, PromptAction.due_at, PromptAction.status == PENDING)


async def _after(s: Any, model: type[M], last_id: int) -> list[M]:
    """The rows of ``model`` written since the one with ``last_id``, in order."""
    rows = await s.execute(select(model).where(model.id > last_id).order_by(model.id))
    return list(rows.scalars())


class _Seen:
    """Reads what is new since the last look: transitions, flow changes, prompts, messages."""

    def __init__(self, timezone: str) -> None:
        self.tz = ZoneInfo(timezone)
        self.transition = 0
        self.outbox = 0
        self.flows: dict[int, tuple[str, str | None]] = {}
        self.prompts: dict[int, tuple[str, datetime, str | None]] = {}

    async def collect(self, runtime: Any) -> list[Entry]:
        out: list[Entry] = []
        async with runtime.db.session() as s:
            for t in await _after(s, StageTransition, self.transition):
                self.transition = t.id
                out.append(
                    Entry(
                        t.occurred_at,
                        "stage",
                        f"{t.from_stage} -> {t.to_stage} ({t.cause}: {t.rule})",
                    )
                )
            for f in (await s.execute(select(FlowState).order_by(FlowState.id))).scalars():
                before = self.flows.get(f.id)
                state = (f.status, f.step_id)
                if before == state:
                    continue
                self.flows[f.id] = state
                out.append(Entry(f.updated_at, "flow", _flow_text(f, before is None)))
            out += await self._prompts(s)
            for m in await _after(s, OutboxMessage, self.outbox):
                self.outbox = m.id
                payload = m.payload or {}
                buttons = [b.get("title", "") for b in payload.get("buttons") or []]
                text = str(payload.get("text", ""))
                if buttons:
                    text += "  [" + " | ".join(buttons) + "]"
                out.append(Entry(m.created_at, "message", text))
        return out

    async def _prompts(self, s: Any) -> list[Entry]:
        """Each prompt action that is new or changed: scheduled, deferred, sent, skipped (with
        the reason), held out, cancelled."""
        from bot.prompts.models import PromptAction, PromptSend, PromptSkip

        out: list[Entry] = []
        for a in (await s.execute(select(PromptAction).order_by(PromptAction.id))).scalars():
            state = (a.status, a.due_at, a.reason)
            before = self.prompts.get(a.id)
            if before == state:
                continue
            self.prompts[a.id] = state
            due = f"{a.due_at.astimezone(self.tz):%Y-%m-%d %H:%M}"
            if a.status == "pending":
                if before is None:
                    out.append(Entry(a.created_at, "prompt", f"{a.prompt_id} scheduled for {due}"))
                else:
                    out.append(
                        Entry(
                            a.updated_at, "prompt", f"{a.prompt_id} deferred to {due} ({a.reason})"
                        )
                    )
                continue
            if before is None and a.created_at < a.updated_at:
                out.append(Entry(a.created_at, "prompt", f"{a.prompt_id} scheduled for {due}"))
            if a.status == "sent":
                send = (
                    await s.execute(select(PromptSend).where(PromptSend.action_id == a.id))
                ).scalar_one_or_none()
                where = f" on {send.channel}" if send is not None else ""
                variant = f", variant {a.variant}" if a.variant and a.variant != "a" else ""
                text = f"{a.prompt_id} sent{where}{variant}"
            elif a.status in ("skipped", "held"):
                skip = (
                    await s.execute(select(PromptSkip).where(PromptSkip.action_id == a.id).limit(1))
                ).scalar_one_or_none()
                detail = f": {skip.detail}" if skip is not None and skip.detail else ""
                if a.reason == "holdout":
                    text = f"{a.prompt_id} held out (experiment holdout: nothing sent)"
                else:
                    text = f"{a.prompt_id} skipped: {a.reason}{detail}"
            else:
                text = f"{a.prompt_id} {a.status}: {a.reason}"
            out.append(Entry(a.updated_at, "prompt", text))
        return out


def _flow_text(f: FlowState, new: bool) -> str:
    where = f" at {f.step_id}" if f.step_id and f.status != DONE else ""
    what = {
        "active": "waits for an answer",
        "waiting": f"waits until {f.due_at:%Y-%m-%d %H:%M}" if f.due_at else "waits",
        "paused": "paused",
        "pending": "pending (no channel to write to)",
        "done": "finished",
        "cancelled": "cancelled",
    }.get(f.status, f.status)
    if new:
        return f"{f.flow_id} started ({f.trigger}): {what}{where}"
    return f"{f.flow_id}: {what}{where}"


async def _figures(runtime: Any, user: str, now: datetime) -> dict[str, Any]:
    svc = service_of(runtime)
    async with runtime.db.session() as s:
        c = (await s.execute(select(Contact).where(Contact.user_id == user))).scalar_one()
        r, f, m = svc.config.rfm.scores(c, now)
        facts = Facts(c, now)
        segments = [name for name, cond in svc.config.segments.items() if cond.eval(facts)]
        return {
            "stage": c.lifecycle_stage,
            "purchases": c.purchase_count,
            "monetary": str(c.monetary_total),
            "rfm": f"{r}{f}{m}",
            "segments": segments,
            "attributes": dict(c.attributes or {}),
        }


def format_timeline(
    entries: Iterable[Entry], timezone: str | None = None
) -> list[tuple[str, str, str]]:
    """(when, kind, text) rows in time order; ``timezone``: the times shown in it."""
    tz = ZoneInfo(timezone) if timezone else None
    rows = sorted(entries, key=lambda e: e.at)
    return [(e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), e.kind, e.text) for e in rows]
