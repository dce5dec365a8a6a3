"""The flow interpreter: one state per contact and flow run, shared by every channel (issue 6).

A :class:`Run` is one go of the step machine (say, ask, branch, set, wait, call, hand over);
what it says goes into the person's turn (:mod:`bot.flows.turns`) or, outside a turn, to the
outbox on the person's best channel (:mod:`bot.flows.outreach`). At most one flow is
``active`` per contact: starting another pauses it, and the end of a flow offers to go on with
the paused one.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content.conditions import Facts
from bot.content.fill import fill
from bot.engine import StateKey
from bot.flows.model import (
    END,
    AskStep,
    BranchStep,
    CallStep,
    Flow,
    FlowBook,
    HandoffStep,
    RecordStep,
    SayStep,
    SetStep,
    Step,
    Trigger,
    WaitStep,
)
from bot.lifecycle.models import (
    ACTIVE,
    CANCELLED,
    DONE,
    OPEN_STATUSES,
    PAUSED,
    PENDING,
    WAITING,
    FlowState,
)
from bot.storage.models import Contact
from bot.types import Button, Outbound, Purpose

if TYPE_CHECKING:
    from bot.engine import Turn
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_STEPS_PER_RUN = 100
PENDING_FOR = timedelta(days=7)  # a pending flow older than this is dropped, not started
DIGRESSION_CONFIDENCE = 0.5
_STATE = StateKey[list[FlowState]]("flows.states", per_contact=True)
_PREFETCHED = StateKey[tuple[int, list[FlowState]]]("flows.prefetched")  # (contact id, states)
_HANDLED = StateKey[bool]("flows.handled")

RecordEvent = Callable[[AsyncSession, Contact, str, dict[str, Any], datetime, str], Awaitable[None]]


def with_status(states: Iterable[FlowState], *statuses: str) -> FlowState | None:
    """The first of ``states`` (newest first, as :meth:`Interpreter.open_states` orders them)
    in one of ``statuses``."""
    return next((st for st in states if st.status in statuses), None)


@dataclass
class Run:
    """One go of the runner: where its messages go and what it may look at."""

    s: AsyncSession
    contact: Contact
    now: datetime
    language: str
    turn: Turn | None = None
    out: list[Outbound] = field(default_factory=list)

    def emit(self, message: Outbound) -> None:
        if self.turn is not None:
            self.turn.replies.append(message)  # in order with what other parts say
        else:
            self.out.append(message)


class Interpreter:
    def __init__(self, runtime: Runtime, book: FlowBook) -> None:
        self.runtime = runtime
        self.book = book
        self.record_event: RecordEvent | None = None

    @property
    def responses(self) -> Any:
        return self.runtime.responses

    # --- reading state -----------------------------------------------------------------------
    async def open_states(self, s: AsyncSession, contact_id: int) -> list[FlowState]:
        return list((await s.execute(_OPEN_STATES, {"contact_id": contact_id})).scalars())

    # --- texts -------------------------------------------------------------------------------
    def render(self, name: str | None, language: str, values: dict[str, Any]) -> Outbound | None:
        """A response with ``{placeholders}`` filled (:func:`bot.content.fill.fill`)."""
        variants = self.responses.variants(name, language) if name else []
        if not variants:
            return None
        chosen = random.choice(variants)
        return Outbound(text=fill(chosen.text, values), buttons=chosen.buttons)

    def text(self, name: str, language: str, **values: Any) -> str:
        out = self.render(name, language, values)
        return out.text if out is not None else name

    def _values(self, run: Run, st: FlowState) -> dict[str, Any]:
        c = run.contact
        name = c.display_name or ""
        values: dict[str, Any] = {"name": name, "first_name": name.split(" ")[0] if name else ""}
        for k, v in (st.context.get("event") or {}).items():
            if isinstance(v, str | int | float) and not isinstance(v, bool):
                values[k] = v
        values.update(st.slots or {})
        return values

    def title(self, flow: Flow, language: str) -> str:
        if flow.title and self.responses.has(flow.title, language):
            return self.text(flow.title, language)
        return flow.id.replace("_", " ")

    def progress_text(self, flow: Flow, step_id: str | None, language: str) -> str | None:
        at = flow.progress_of(step_id) if step_id else None
        if at is None:
            return None
        return self.text("utter_flow_progress", language, n=at[0], total=at[1])

    # --- starting ----------------------------------------------------------------------------
    def matches(
        self, trigger: Trigger, contact: Contact, now: datetime, event: dict[str, Any]
    ) -> bool:
        try:
            return trigger.when.eval(Facts(contact, now, {}, event))
        except Exception:  # a condition over odd data: not a reason to fail a turn
            log.exception("flow trigger condition failed")
            return False

    async def start(
        self,
        run: Run,
        flow: Flow,
        *,
        trigger: str,
        context: dict[str, Any] | None = None,
        states: Sequence[FlowState] | None = None,
    ) -> FlowState | None:
        """Start ``flow`` for the contact (or resume the run of it that is still open)."""
        c = run.contact
        if flow.purpose == "marketing" and c.marketing_opt_out:
            return None
        states = list(states) if states is not None else await self.open_states(run.s, c.id)
        same = next((st for st in states if st.flow_id == flow.id and not st.stack), None)
        if same is not None:
            if run.turn is not None and same.status in (ACTIVE, PAUSED, PENDING):
                await self.resume(run, same, states, welcome=same.status == PAUSED)
            return same
        st = FlowState(
            contact_id=c.id,
            flow_id=flow.id,
            step_id=flow.first(),
            status=ACTIVE,
            stack=[],
            history=[],
            slots={},
            context=context or {},
            trigger=trigger[:128],
            seq=0,
            tries=0,
            started_at=run.now,
            updated_at=run.now,
        )
        run.s.add(st)
        await run.s.flush()
        if run.turn is not None:
            run.turn.state.setdefault(_STATE, []).insert(0, st)
        await self._advance(run, st, flow.first() or END, others=states)
        return st

    async def resume(
        self, run: Run, st: FlowState, states: Sequence[FlowState], *, welcome: bool
    ) -> None:
        """Make ``st`` the active flow again and show where it stands."""
        for other in states:
            if other is not st and other.status == ACTIVE:
                other.status = PAUSED
                other.updated_at = run.now
        if st.status == PENDING:
            await self._advance(run, st, st.step_id or END, others=states)
            return
        st.status = ACTIVE
        st.updated_at = run.now
        flow = self.book.get(st.flow_id)
        step = flow.step(st.step_id) if flow else None
        if flow is None or step is None:
            self._close(st, CANCELLED, run.now)
            return
        if welcome:
            run.emit(
                Outbound(
                    text=self.text(
                        "utter_flow_resumed", run.language, title=self.title(flow, run.language)
                    )
                )
            )
        if step.interactive:
            self._prompt(run, st, flow, step)
        else:
            await self._advance(run, st, step.id, others=states)

    # --- the step machine ------------------------------------------------------------------
    async def _advance(
        self, run: Run, st: FlowState, target: str, *, others: Sequence[FlowState] = ()
    ) -> None:
        """Run steps from ``target`` until one waits for the person, a wait, or the end."""
        st.status = ACTIVE
        st.updated_at = run.now
        st.tries = 0
        for _ in range(MAX_STEPS_PER_RUN):
            flow = self.book.get(st.flow_id)
            if flow is None:
                log.warning("flow %s is gone: run %s cancelled", st.flow_id, st.id)
                self._close(st, CANCELLED, run.now)
                return
            if target == END:
                # they went through this flow: other open runs of it are done with too
                for other in others:
                    if (
                        other is not st
                        and other.flow_id == st.flow_id
                        and other.status in OPEN_STATUSES
                    ):
                        self._close(other, CANCELLED, run.now)
                if st.stack:
                    frame = st.stack[-1]
                    st.stack = st.stack[:-1]
                    st.flow_id = frame["flow"]
                    st.history = list(frame.get("history") or [])
                    target = frame["next"]
                    continue
                self._close(st, DONE, run.now)
                self._offer_paused(run, st, others)
                return
            step = flow.step(target)
            if step is None:
                log.warning("flow %s has no step %s: run %s cancelled", flow.id, target, st.id)
                self._close(st, CANCELLED, run.now)
                return
            st.step_id = step.id
            if isinstance(step, SayStep):
                run.emit(self._say(run, st, flow, step))
                target = flow.following(step)
            elif step.interactive:
                for other in others:
                    if other is not st and other.status == ACTIVE:
                        other.status = PAUSED
                        other.updated_at = run.now
                self._prompt(run, st, flow, step)
                return
            elif isinstance(step, WaitStep):
                st.status = WAITING
                st.due_at = run.now + step.duration
                return
            elif isinstance(step, BranchStep):
                target = self._branch(run, st, flow, step)
            elif isinstance(step, CallStep):
                callee = self.book.get(step.flow)
                if callee is None or callee.first() is None:
                    log.warning("flow %s calls unknown flow %s", flow.id, step.flow)
                    target = flow.following(step)
                    continue
                st.stack = [
                    *st.stack,
                    {"flow": flow.id, "next": flow.following(step), "history": st.history},
                ]
                st.flow_id = callee.id
                st.history = []
                target = callee.first() or END
            elif isinstance(step, HandoffStep):
                await self._handoff(run, step)
                target = flow.following(step)
            elif isinstance(step, SetStep):
                self._set(run, st, step)
                target = flow.following(step)
            elif isinstance(step, RecordStep):
                if self.record_event is not None and step.event:
                    props = {k: v for k, v in (st.slots or {}).items() if v is not None}
                    props["flow"] = st.flow_id
                    key = f"flow:{st.id}:{step.id}:{st.seq}"
                    await self.record_event(run.s, run.contact, step.event, props, run.now, key)
                target = flow.following(step)
            else:  # end
                target = END
        log.error("flow run %s took more than %d steps at once: stopped", st.id, MAX_STEPS_PER_RUN)
        self._close(st, CANCELLED, run.now)

    def _close(self, st: FlowState, status: str, now: datetime) -> None:
        st.status = status
        st.due_at = None
        st.updated_at = now
        st.finished_at = now

    def _offer_paused(self, run: Run, st: FlowState, others: Sequence[FlowState]) -> None:
        paused = with_status((o for o in others if o is not st), PAUSED)
        if paused is None:
            return
        flow = self.book.get(paused.flow_id)
        if flow is None:
            return
        run.emit(self._resume_offer(run.language, flow, paused))

    def _resume_offer(self, language: str, flow: Flow, st: FlowState) -> Outbound:
        text = self.text("utter_flow_resume_offer", language, title=self.title(flow, language))
        where = self.progress_text(flow, st.step_id, language)
        if where:
            text = f"{text} ({where})"
        return Outbound(
            text=text,
            buttons=(
                Button(
                    self.text("utter_button_continue", language),
                    f'/flow_continue{{"id":{st.id}}}',
                ),
            ),
            metadata={"flow": flow.id, "flow_offer": True},
        )

    def _say(self, run: Run, st: FlowState, flow: Flow, step: Step) -> Outbound:
        values = self._values(run, st)
        out = self.render(step.response, run.language, values)
        text = out.text if out else step.response or ""
        buttons = list(out.buttons) if out else []
        buttons += [
            Button(self.text(c.title, run.language), c.url or "", url=c.url)
            for c in step.choices
            if c.url
        ]
        return Outbound(
            text=text,
            buttons=tuple(buttons),
            purpose=Purpose(flow.purpose),
            metadata={"flow": flow.id, "step": step.id},
        )

    def _prompt(self, run: Run, st: FlowState, flow: Flow, step: Step) -> None:
        """Show an ask/collect step and wait for the person."""
        lang = run.language
        st.status = ACTIVE
        st.step_id = step.id
        st.updated_at = run.now
        if not st.history or st.history[-1] != step.id:
            st.history = [*st.history, step.id][-50:]
        values = self._values(run, st)
        out = self.render(step.response, lang, values)
        text = out.text if out else step.response or ""
        where = self.progress_text(flow, step.id, lang)
        if where:
            text = f"{where}\n{text}"
        buttons: list[Button] = list(out.buttons) if out else []
        if isinstance(step, AskStep):
            answers = [c for c in step.choices if c.url is None]
            for i, c in enumerate(step.choices):
                title = self.text(c.title, lang)
                if c.url:
                    buttons.append(Button(title, c.url, url=c.url))
                else:
                    buttons.append(Button(title, _payload("flow_answer", s=step.id, i=i)))
            if not answers and not step.slot:
                buttons.insert(
                    0,
                    Button(self.text("utter_button_next", lang), _payload("flow_next", s=step.id)),
                )
        elif st.tries >= 2:
            buttons.append(Button(self.text("utter_button_skip", lang), "/flow_skip"))
        if flow.progress:
            if len(st.history) > 1:
                buttons.append(Button(self.text("utter_button_back", lang), "/flow_back"))
            buttons.append(Button(self.text("utter_button_pause", lang), "/flow_pause"))
        run.emit(
            Outbound(
                text=text,
                buttons=tuple(buttons),
                purpose=Purpose(flow.purpose),
                metadata={"flow": flow.id, "step": step.id},
            )
        )

    def _branch(self, run: Run, st: FlowState, flow: Flow, step: BranchStep) -> str:
        facts = Facts(run.contact, run.now, st.slots or {}, st.context.get("event") or {})
        for b in step.branches:
            if b.when is None:
                return b.then
            try:
                if b.when.eval(facts):
                    return b.then
            except Exception:
                log.exception("branch condition of %s/%s failed", flow.id, step.id)
        return flow.following(step)

    def _set(self, run: Run, st: FlowState, step: SetStep) -> None:
        values = self._values(run, st)
        for field_name, raw in step.values:
            value = raw
            if isinstance(raw, str) and "{" in raw:
                value = raw.format_map(_Blank(values))
            _store(run.contact, field_name, value, run.now)

    async def _handoff(self, run: Run, step: HandoffStep) -> None:
        """Hand the conversation to staff: the handoff feature when it is there (in a turn),
        otherwise offer a person with the ``/request_human`` button."""
        turn = run.turn
        conv = (
            turn.conversation
            if turn
            else await self.runtime.engine.open_conversation(run.s, run.contact, run.now)
        )
        conv.state = {**(conv.state or {}), "handoff_requested": step.reason}
        from bot.handoff.service import HandoffService

        service = self.runtime.maybe_service(HandoffService)
        if turn is not None and service is not None and conv.status != "handoff":
            await service.start(run.s, turn, step.reason)
            return
        run.emit(
            Outbound(
                text=self.text("utter_offer_human", run.language),
                buttons=(
                    Button(
                        self.text("utter_button_human", run.language),
                        f'/request_human{{"reason": "{step.reason}"}}',
                    ),
                ),
            )
        )


def _payload(intent: str, **values: Any) -> str:
    return f"/{intent}{json.dumps(values, separators=(',', ':'), ensure_ascii=False)}"


def _store(contact: Contact, field_name: str, value: Any, now: datetime) -> None:
    if field_name.startswith("attributes."):
        contact.attributes = {**(contact.attributes or {}), field_name[11:]: value}
    else:
        setattr(contact, field_name, None if value is None else str(value))
    contact.updated_at = now


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


# every turn asks: built once (building the statement cost more than running it)
_OPEN_STATES = (
    select(FlowState)
    .where(FlowState.contact_id == bindparam("contact_id"), FlowState.status.in_(OPEN_STATUSES))
    .order_by(FlowState.updated_at.desc(), FlowState.id.desc())
)
_OPEN_STATES_MANY = (
    select(FlowState)
    .where(
        FlowState.contact_id.in_(bindparam("contact_ids", expanding=True)),
        FlowState.status.in_(OPEN_STATUSES),
    )
    .order_by(FlowState.updated_at.desc(), FlowState.id.desc())
)
