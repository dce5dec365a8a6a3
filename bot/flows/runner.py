"""Running flows: one state per contact and flow run, shared by every channel (issue 6).

- In a turn (the person wrote), the flow policy answers from the active flow: a button, an
  answer, a control word ("pause", "continue", "skip", "back" in five languages). Anything else
  is a digression: the other policies answer it and a short reminder offers to go on.
- Outside a turn (a shop event, a stage change, a wait that ran out), messages go to the
  person's best channel through the outbox; when nobody can be written to, the flow waits as
  ``pending`` and starts with their next message, wherever it comes from.
- At most one flow is ``active`` per contact: starting another pauses it, and the end of a flow
  offers to go on with the paused one.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine import Reply, StateKey
from bot.flows import validators
from bot.flows.model import END, Flow, FlowBook, Step, Trigger
from bot.flows.words import control_word, normalize, word_language
from bot.lifecycle.conditions import Facts
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
from bot.storage.models import Contact, Conversation, Identity
from bot.types import Button, Outbound, Purpose

if TYPE_CHECKING:
    from bot.engine import Turn
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_STEPS_PER_RUN = 100
NO_PUSH_CHANNELS = ("rest", "cli")  # replies travel back in the request: nothing to push to
PENDING_FOR = timedelta(days=7)  # a pending flow older than this is dropped, not started
DIGRESSION_CONFIDENCE = 0.5
_STATE = StateKey[list[FlowState]]("flows.states", per_contact=True)
_PREFETCHED = StateKey[tuple[int, list[FlowState]]]("flows.prefetched")  # (contact id, states)
_HANDLED = StateKey[bool]("flows.handled")

RecordEvent = Callable[[AsyncSession, Contact, str, dict[str, Any], datetime, str], Awaitable[None]]


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


class FlowRunner:
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

    async def prefetch(self, s: AsyncSession, turns: list[Turn]) -> None:
        """The open flow states of a batch's people, in one statement (engine prefetcher)."""
        ids = {t.contact.id for t in turns}
        found: dict[int, list[FlowState]] = {i: [] for i in ids}
        if len(ids) == 1:
            found[next(iter(ids))] = await self.open_states(s, next(iter(ids)))
        else:
            for st in (await s.execute(_OPEN_STATES_MANY, {"contact_ids": sorted(ids)})).scalars():
                found[st.contact_id].append(st)  # newest first, as open_states orders them
        for t in turns:
            t.state.set(_PREFETCHED, (t.contact.id, found[t.contact.id]))

    async def _turn_states(self, turn: Turn) -> list[FlowState]:
        cached = turn.state.get(_STATE)
        if cached is None:
            pre = turn.state.get(_PREFETCHED)
            if pre is not None and pre[0] == turn.contact.id:  # not re-linked since
                cached = list(pre[1])
            else:
                cached = await self.open_states(turn.session, turn.contact.id)
            turn.state.set(_STATE, cached)
        return [st for st in cached if st.status in OPEN_STATUSES]

    # --- texts -------------------------------------------------------------------------------
    def render(self, name: str | None, language: str, values: dict[str, Any]) -> Outbound | None:
        """A response with ``{placeholders}`` filled (unknown ones become empty)."""
        variants = self.responses.variants(name, language) if name else []
        if not variants:
            return None
        chosen = random.choice(variants)
        return Outbound(text=_fill(chosen.text, values), buttons=chosen.buttons)

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
            kind = step.kind
            if kind == "say":
                run.emit(self._say(run, st, flow, step))
                target = flow.following(step)
            elif kind in ("ask", "collect"):
                for other in others:
                    if other is not st and other.status == ACTIVE:
                        other.status = PAUSED
                        other.updated_at = run.now
                self._prompt(run, st, flow, step)
                return
            elif kind == "wait":
                assert step.duration is not None
                st.status = WAITING
                st.due_at = run.now + step.duration
                return
            elif kind == "branch":
                target = self._branch(run, st, flow, step)
            elif kind == "call":
                callee = self.book.get(step.flow or "")
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
            elif kind == "handoff":
                await self._handoff(run, step)
                target = flow.following(step)
            elif kind == "set":
                self._set(run, st, step)
                target = flow.following(step)
            elif kind == "record":
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
        paused = next((o for o in others if o is not st and o.status == PAUSED), None)
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
        if step.kind == "ask":
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

    def _branch(self, run: Run, st: FlowState, flow: Flow, step: Step) -> str:
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

    def _set(self, run: Run, st: FlowState, step: Step) -> None:
        values = self._values(run, st)
        for field_name, raw in step.values:
            value = raw
            if isinstance(raw, str) and "{" in raw:
                value = raw.format_map(_Blank(values))
            _store(run.contact, field_name, value, run.now)

    async def _handoff(self, run: Run, step: Step) -> None:
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

    # --- answers (in a turn) ------------------------------------------------------------------
    async def answer(self, run: Run, st: FlowState, states: Sequence[FlowState]) -> bool:
        """The person's message at an ask/collect step; False: not an answer (a digression)."""
        turn = run.turn
        assert turn is not None
        flow = self.book.get(st.flow_id)
        step = flow.step(st.step_id) if flow else None
        if flow is None or step is None or not step.interactive:
            return False
        text = turn.inbound.text
        if step.kind == "collect":
            value = validators.check(step, text)
            if value is None:
                if _digression(turn):
                    return False
                st.tries += 1
                st.updated_at = run.now
                run.emit(
                    Outbound(
                        text=self.text(step.invalid or "utter_flow_invalid", run.language),
                        metadata={"flow": flow.id, "step": step.id},
                    )
                )
                self._prompt(run, st, flow, step)
                return True
            assert step.slot is not None
            st.slots = {**(st.slots or {}), step.slot: value}
            if step.save:
                _store(run.contact, step.save, value, run.now)
            await self._advance(run, st, flow.following(step), others=states)
            return True
        answers = [(i, c) for i, c in enumerate(step.choices) if c.url is None]
        if answers:
            picked = self._match(run, answers, text)
            if picked is None:
                return False
            _, choice = picked
            if step.slot:
                value = (
                    choice.value
                    if choice.value is not None
                    else self.text(choice.title, run.language)
                )
                st.slots = {**(st.slots or {}), step.slot: value}
            await self._advance(run, st, choice.next or flow.following(step), others=states)
            return True
        if step.slot:  # a free answer
            if _digression(turn) or not text.strip():
                return False
            st.slots = {**(st.slots or {}), step.slot: text.strip()[: validators.MAX_TEXT]}
            await self._advance(run, st, flow.following(step), others=states)
            return True
        return False  # a "Next" page: only next/continue moves it (control words, button)

    def _match(self, run: Run, answers: list[tuple[int, Any]], text: str) -> tuple[int, Any] | None:
        """The answer whose title (in the turn's language, else in another) or value was typed."""
        said = normalize(text)
        if not said:
            return None
        langs = [run.language] + [
            lang for lang in self.runtime.settings.languages if lang != run.language
        ]
        for lang in langs:
            for i, c in answers:
                title = normalize(self.text(c.title, lang))
                if said == title or (c.value is not None and said == normalize(c.value)):
                    self._speak(run, lang)
                    return i, c
        return None

    def _speak(self, run: Run, language: str | None) -> None:
        """Answer in ``language`` (a word's own language beats a guess from two letters)."""
        if not language or language == run.language:
            return
        run.language = language
        run.contact.language = language
        if run.turn is not None:
            run.turn.language = language

    async def pick(
        self, run: Run, st: FlowState, step_id: str, index: int, states: Sequence[FlowState]
    ) -> None:
        """A pressed answer button (``/flow_answer{"s": step, "i": index}``)."""
        flow = self.book.get(st.flow_id)
        step = flow.step(st.step_id) if flow else None
        if flow is None or step is None:
            return
        if step.id != step_id or step.kind != "ask" or not 0 <= index < len(step.choices):
            # a button of an earlier message: show where the flow stands instead
            self._prompt(run, st, flow, step)
            return
        choice = step.choices[index]
        if choice.url:
            self._prompt(run, st, flow, step)
            return
        if step.slot:
            value = (
                choice.value if choice.value is not None else self.text(choice.title, run.language)
            )
            st.slots = {**(st.slots or {}), step.slot: value}
        await self._advance(run, st, choice.next or flow.following(step), others=states)

    async def control(
        self,
        run: Run,
        word: str,
        states: Sequence[FlowState],
        *,
        state_id: int | None = None,
        step_id: str | None = None,
    ) -> bool:
        """pause / continue / skip / back. False when there is no flow to apply it to."""
        active = next((st for st in states if st.status == ACTIVE), None)
        lang = run.language
        if word == "pause":
            target = active or next((st for st in states if st.status == WAITING), None)
            if target is None:
                return False
            flow = self.book.get(target.flow_id)
            target.status = PAUSED
            target.due_at = None
            target.updated_at = run.now
            title = self.title(flow, lang) if flow else target.flow_id
            run.emit(Outbound(text=self.text("utter_flow_paused", lang, title=title)))
            return True
        if word == "continue":
            chosen = None
            if state_id is not None:
                chosen = next((st for st in states if st.id == state_id), None)
            if chosen is None and active is not None:
                flow = self.book.get(active.flow_id)
                step = flow.step(active.step_id) if flow else None
                if flow is None or step is None:
                    return False
                if step_id is not None and step_id != step.id:
                    self._prompt(run, active, flow, step)  # an old Next button
                    return True
                answers = [c for c in step.choices if c.url is None]
                if step.kind == "ask" and not answers and not step.slot:
                    await self._advance(run, active, flow.following(step), others=states)
                elif step.kind == "ask" and len(answers) == 1:
                    await self.pick(run, active, step.id, step.choices.index(answers[0]), states)
                else:
                    self._prompt(run, active, flow, step)  # a real question: ask it again
                return True
            chosen = chosen or next((st for st in states if st.status in (PAUSED, PENDING)), None)
            if chosen is None:
                return False
            await self.resume(run, chosen, states, welcome=chosen.status == PAUSED)
            return True
        if active is None:
            return False
        flow = self.book.get(active.flow_id)
        step = flow.step(active.step_id) if flow else None
        if flow is None or step is None:
            return False
        if word == "skip":
            await self._advance(run, active, flow.following(step), others=states)
            return True
        # back
        history = [h for h in active.history if flow.step(h) is not None]
        if history and history[-1] == step.id:
            history = history[:-1]
        if not history:
            run.emit(Outbound(text=self.text("utter_flow_at_start", lang)))
            self._prompt(run, active, flow, step)
            return True
        previous = history[-1]
        active.history = history[:-1]
        prev_step = flow.step(previous)
        assert prev_step is not None
        self._prompt(run, active, flow, prev_step)
        return True

    # --- the engine policy and after-turn hook ----------------------------------------------
    async def policy(self, turn: Turn) -> bool:
        if turn.conversation.status == "handoff":
            return False  # staff have the conversation
        run = Run(turn.session, turn.contact, turn.now, turn.language, turn)
        intent = turn.intent
        if intent.startswith("flow_"):
            handled = await self._payload(run, intent, turn.entities)
            turn.answer_meta.update(intent=intent, confidence=1.0)
            turn.state.set(_HANDLED, True)
            return handled
        states = await self._turn_states(turn)
        if states:
            word = control_word(turn.inbound.text) if turn.inbound.payload is None else None
            if word:
                self._speak(run, word_language(turn.inbound.text, turn.language))
            if word and await self.control(run, word, states):
                turn.answer_meta.update(intent=f"flow_{word}", confidence=1.0)
                turn.state.set(_HANDLED, True)
                return True
            active = next((st for st in states if st.status == ACTIVE), None)
            if active is not None and await self.answer(run, active, states):
                turn.answer_meta.update(intent=f"flow:{active.flow_id}", confidence=turn.confidence)
                turn.state.set(_HANDLED, True)
                return True
        for flow, trigger in self.book.triggers("intent", intent):
            if self.matches(trigger, turn.contact, turn.now, {}):
                st = await self.start(run, flow, trigger=f"intent:{intent}", states=states)
                if st is not None:
                    turn.answer_meta.update(intent=intent, confidence=turn.confidence, flow=flow.id)
                    turn.state.set(_HANDLED, True)
                    return True
        return False

    async def _payload(self, run: Run, intent: str, entities: dict[str, Any]) -> bool:
        turn = run.turn
        assert turn is not None
        states = await self._turn_states(turn)
        lang = run.language
        if intent == "flow_start":
            flow = self.book.get(str(entities.get("flow", "")))
            if flow is None and entities.get("link"):
                found = self.book.by_trigger("link", str(entities["link"]))
                flow = found[0] if found else None
            if flow is None:
                run.emit(Outbound(text=self.text("utter_flow_unknown", lang)))
                return True
            await self.start(run, flow, trigger=f"link:{flow.id}", states=states)
            return True
        active = next((st for st in states if st.status == ACTIVE), None)
        if intent == "flow_answer":
            if active is None:
                return await self._nothing_open(run, states)
            try:
                index = int(entities.get("i", -1))
            except (TypeError, ValueError):
                index = -1
            await self.pick(run, active, str(entities.get("s", "")), index, states)
            return True
        word = {"flow_next": "continue", "flow_continue": "continue"}.get(intent, intent[5:])
        if word not in ("pause", "continue", "skip", "back"):
            return False
        state_id = entities.get("id")
        step_id = entities.get("s")
        if await self.control(
            run,
            word,
            states,
            state_id=int(state_id)
            if isinstance(state_id, int | str) and str(state_id).isdigit()
            else None,
            step_id=str(step_id) if step_id is not None else None,
        ):
            return True
        return await self._nothing_open(run, states)

    async def _nothing_open(self, run: Run, states: Sequence[FlowState]) -> bool:
        run.emit(Outbound(text=self.text("utter_flow_nothing_open", run.language)))
        return True

    async def after_turn(self, turn: Turn) -> None:
        """Reminders of an open flow after a digression; pending flows start here."""
        c = turn.contact
        attrs = c.attributes or {}
        if attrs.get("prompts_unanswered"):
            c.attributes = {**attrs, "prompts_unanswered": 0}
        if turn.conversation.status == "handoff":
            return
        states = await self._turn_states(turn)
        if not states:
            return
        run = Run(turn.session, c, turn.now, turn.language, turn)
        if turn.state.get(_HANDLED):
            return
        active = next((st for st in states if st.status == ACTIVE), None)
        if active is not None:
            flow = self.book.get(active.flow_id)
            if flow is None:
                return
            reminded = active.context.get("reminded")
            if reminded == f"{active.step_id}:{active.seq}":
                return
            active.context = {**active.context, "reminded": f"{active.step_id}:{active.seq}"}
            text = self.text(
                "utter_flow_reminder", run.language, title=self.title(flow, run.language)
            )
            where = self.progress_text(flow, active.step_id, run.language)
            if where:
                text = f"{text} ({where})"
            run.emit(
                Outbound(
                    text=text,
                    buttons=(
                        Button(self.text("utter_button_continue", run.language), "/flow_continue"),
                        Button(self.text("utter_button_pause", run.language), "/flow_pause"),
                    ),
                    metadata={"flow": flow.id, "flow_reminder": True},
                )
            )
            return
        pending = [st for st in states if st.status == PENDING]
        fresh = [st for st in pending if st.started_at >= turn.now - PENDING_FOR]
        for st in pending:
            if st not in fresh:
                self._close(st, CANCELLED, turn.now)
        if fresh:
            st = fresh[0]
            await self._advance(run, st, st.step_id or END, others=states)
            return
        paused = next((st for st in states if st.status == PAUSED), None)
        if paused is not None and turn.intent == "greet":
            flow = self.book.get(paused.flow_id)
            if flow is not None:
                run.emit(self._resume_offer(run.language, flow, paused))

    # --- outside a turn ----------------------------------------------------------------------
    def language_of(self, contact: Contact) -> str:
        langs = self.runtime.settings.languages
        lang = contact.language or ""
        if lang in langs:
            return lang
        if lang[:2] in langs:
            return lang[:2]
        return str(self.runtime.settings.default_language)

    async def target(self, s: AsyncSession, contact: Contact) -> Identity | None:
        """Where to write to the person: their preferred channel, else the one they used last."""
        rows = list(
            (
                await s.execute(
                    select(Identity).where(
                        Identity.contact_id == contact.id,
                        Identity.reachable.is_(True),
                        Identity.started.is_(True),
                        Identity.channel.not_in(NO_PUSH_CHANNELS),
                    )
                )
            ).scalars()
        )
        if not rows:
            return None
        for ident in rows:
            if contact.preferred_channel and ident.channel == contact.preferred_channel:
                return ident
        epoch = (
            datetime.min.replace(tzinfo=contact.created_at.tzinfo) if contact.created_at else None
        )
        return max(rows, key=lambda i: (i.last_seen_at or i.created_at or epoch, i.id))

    async def trigger_outside(
        self,
        s: AsyncSession,
        contact: Contact,
        flows: Sequence[tuple[Flow, str, dict[str, Any]]],
        now: datetime,
    ) -> int:
        """Start flows for a person who is not writing right now (events, stage changes)."""
        if not flows:
            return 0
        states = await self.open_states(s, contact.id)
        ident = await self.target(s, contact)
        conv = None
        if ident is not None:
            conv = (
                await s.execute(
                    select(Conversation)
                    .where(Conversation.contact_id == contact.id, Conversation.status != "closed")
                    .order_by(Conversation.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        started = 0
        for flow, trigger, context in flows:
            if flow.purpose == "marketing" and contact.marketing_opt_out:
                continue
            if any(st.flow_id == flow.id for st in states):
                continue  # this flow is already under way for them
            if ident is None or (conv is not None and conv.status == "handoff"):
                st = FlowState(
                    contact_id=contact.id, flow_id=flow.id, step_id=flow.first(), status=PENDING,
                    stack=[], history=[], slots={}, context=context, trigger=trigger[:128],
                    seq=0, tries=0, started_at=now, updated_at=now,
                )  # fmt: skip
                s.add(st)
                states.insert(0, st)
                started += 1
                continue
            run = Run(s, contact, now, self.language_of(contact))
            new = await self.start(run, flow, trigger=trigger, context=context, states=states)
            if new is not None:
                states.insert(0, new)
                started += 1
                await self.deliver(run, new, ident)
        return started

    async def deliver(self, run: Run, st: FlowState, ident: Identity | None = None) -> int:
        """Write what a run said outside a turn to the person's channel (outbox)."""
        if not run.out:
            return 0
        s, c = run.s, run.contact
        ident = ident or await self.target(s, c)
        if ident is None:
            return 0
        engine = self.runtime.engine
        conv = await engine.open_conversation(s, c, run.now)
        replies = [
            Reply(
                contact_id=c.id,
                conversation_id=conv.id,
                channel=ident.channel,
                address=ident.address or ident.external_id,
                message=m,
                idempotency_key=f"flow:{st.id}:{st.seq + i}",
                meta={"flow": st.flow_id},
                language=run.language,
            )
            for i, m in enumerate(run.out)
        ]
        st.seq += len(run.out)
        ids = [i for got in await engine.write(s, replies, now=run.now) for i in got]
        attrs = c.attributes or {}
        c.attributes = {
            **attrs,
            "prompts_unanswered": int(attrs.get("prompts_unanswered") or 0) + 1,
        }
        run.out = []
        return len(ids)

    async def run_due(self, now: datetime | None = None, limit: int = 200) -> int:
        """Resume flows whose wait ran out. Returns how many were resumed."""
        now = now or self.runtime.clock.now()
        db = self.runtime.db
        async with db.session() as s:
            q = (
                select(FlowState)
                .where(FlowState.status == WAITING, FlowState.due_at <= now)
                .order_by(FlowState.due_at)
                .limit(limit)
            )
            if db.is_postgres:
                q = q.with_for_update(skip_locked=True)
            rows = list((await s.execute(q)).scalars())
            for st in rows:
                contact = await s.get(Contact, st.contact_id)
                flow = self.book.get(st.flow_id)
                step = flow.step(st.step_id) if flow else None
                if contact is None or flow is None or step is None:
                    self._close(st, CANCELLED, now)
                    continue
                nxt = flow.following(step)
                ident = await self.target(s, contact)
                conv_busy = (
                    await s.execute(
                        select(Conversation.id).where(
                            Conversation.contact_id == contact.id, Conversation.status == "handoff"
                        )
                    )
                ).first() is not None
                if ident is None or conv_busy:
                    st.status = PENDING
                    st.step_id = nxt if nxt != END else None
                    st.due_at = None
                    st.updated_at = now
                    if nxt == END:
                        self._close(st, DONE, now)
                    continue
                others = [o for o in await self.open_states(s, contact.id) if o.id != st.id]
                run = Run(s, contact, now, self.language_of(contact))
                st.due_at = None
                await self._advance(run, st, nxt, others=others)
                await self.deliver(run, st, ident)
        if rows:
            self.runtime.worker.wake()
        return len(rows)

    async def due_loop(self, interval: float = 5.0) -> None:
        import asyncio

        while True:
            try:
                while await self.run_due() >= 200:
                    pass
            except Exception:
                log.exception("flow due check failed")
            await asyncio.sleep(interval)

    async def expire(self, s: AsyncSession, now: datetime, after: timedelta) -> int:
        """Open flows nobody touched for ``after`` are dropped (set-based)."""
        result = await s.execute(
            update(FlowState)
            .where(
                FlowState.status.in_((ACTIVE, PAUSED, PENDING)),
                FlowState.updated_at < now - after,
            )
            .values(status=CANCELLED, updated_at=now, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def _digression(turn: Turn) -> bool:
    """A confident question of its own in the middle of a flow."""
    intent = turn.intent
    if turn.inbound.payload:
        return not intent.startswith("flow_")
    return (
        intent.startswith("faq/") or intent in ("request_human", "price_inquiry", "opt_out")
    ) and turn.confidence >= DIGRESSION_CONFIDENCE


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


def _fill(text: str, values: dict[str, Any]) -> str:
    if "{" not in text:
        return text
    try:
        return text.format_map(_Blank(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return text


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
