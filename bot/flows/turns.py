"""The flows' turn policy: a person wrote while a flow is open (issue 6).

The flow policy answers from the active flow: a button, an answer, a control word ("pause",
"continue", "skip", "back" in five languages). Anything else is a digression: the other
policies answer it and a short reminder offers to go on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.flows import validators
from bot.flows.model import END, AskStep, Choice, CollectStep, Flow, Step
from bot.flows.words import control_word, normalize, word_language
from bot.lifecycle.models import (
    ACTIVE,
    CANCELLED,
    OPEN_STATUSES,
    PAUSED,
    PENDING,
    WAITING,
    FlowState,
)
from bot.types import Button, Outbound

if TYPE_CHECKING:
    from bot.engine import Turn

from bot.flows.interpreter import (
    _HANDLED,
    _OPEN_STATES_MANY,
    _PREFETCHED,
    _STATE,
    DIGRESSION_CONFIDENCE,
    PENDING_FOR,
    Interpreter,
    Run,
    _store,
    with_status,
)

log = logging.getLogger(__name__)


class TurnPolicy(Interpreter):
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
        if isinstance(step, CollectStep):
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
            st.slots = {**(st.slots or {}), step.slot: value}
            if step.save:
                _store(run.contact, step.save, value, run.now)
            await self._advance(run, st, flow.following(step), others=states)
            return True
        answers = [c for c in step.choices if c.url is None]
        if answers:
            picked = self._match(run, answers, text)
            if picked is None:
                return False
            await self._choose(run, st, flow, step, picked, states)
            return True
        if step.slot:  # a free answer
            if _digression(turn) or not text.strip():
                return False
            st.slots = {**(st.slots or {}), step.slot: text.strip()[: validators.MAX_TEXT]}
            await self._advance(run, st, flow.following(step), others=states)
            return True
        return False  # a "Next" page: only next/continue moves it (control words, button)

    def _match(self, run: Run, answers: list[Choice], text: str) -> Choice | None:
        """The answer whose title (in the turn's language, else in another) or value was typed."""
        said = normalize(text)
        if not said:
            return None
        langs = [run.language] + [
            lang for lang in self.runtime.settings.languages if lang != run.language
        ]
        for lang in langs:
            for c in answers:
                title = normalize(self.text(c.title, lang))
                if said == title or (c.value is not None and said == normalize(c.value)):
                    self._speak(run, lang)
                    return c
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
        await self._choose(run, st, flow, step, choice, states)

    async def _choose(
        self,
        run: Run,
        st: FlowState,
        flow: Flow,
        step: Step,
        c: Choice,
        states: Sequence[FlowState],
    ) -> None:
        """An answer (typed or pressed): its value (else its title) in the step's slot, on."""
        if step.slot:
            value = c.value if c.value is not None else self.text(c.title, run.language)
            st.slots = {**(st.slots or {}), step.slot: value}
        await self._advance(run, st, c.next or flow.following(step), others=states)

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
        active = with_status(states, ACTIVE)
        lang = run.language
        if word == "pause":
            target = active or with_status(states, WAITING)
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
                if isinstance(step, AskStep) and not answers and not step.slot:
                    await self._advance(run, active, flow.following(step), others=states)
                elif isinstance(step, AskStep) and len(answers) == 1:
                    await self.pick(run, active, step.id, step.choices.index(answers[0]), states)
                else:
                    self._prompt(run, active, flow, step)  # a real question: ask it again
                return True
            chosen = chosen or with_status(states, PAUSED, PENDING)
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
            active = with_status(states, ACTIVE)
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
        active = with_status(states, ACTIVE)
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
        active = with_status(states, ACTIVE)
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
        paused = with_status(states, PAUSED)
        if paused is not None and turn.intent == "greet":
            flow = self.book.get(paused.flow_id)
            if flow is not None:
                run.emit(self._resume_offer(run.language, flow, paused))


def _digression(turn: Turn) -> bool:
    """A confident question of its own in the middle of a flow."""
    intent = turn.intent
    if turn.inbound.payload:
        return not intent.startswith("flow_")
    return (
        intent.startswith("faq/") or intent in ("request_human", "price_inquiry", "opt_out")
    ) and turn.confidence >= DIGRESSION_CONFIDENCE
