"""Reading ``flows/*.yml`` into a :class:`~bot.flows.model.FlowBook`, with ``file:line`` errors.

A flow file holds ``flows:`` (Rasa CALM style: a mapping of flow id to flow). ``lifecycle.yml``
and ``prompts.yml`` in the same folder are other features' files and are skipped; texts live in
``flows/texts/<lang>.yml`` (see :mod:`bot.flows.texts`).

```yaml
flows:
  checkin:
    title: utter_flow_title/checkin           # the flow's name for people (a response)
    description: How is it going, a day after first use.
    trigger: {event: used, within: 3d, when: {segment: customer}}   # or a list of triggers
    purpose: service                          # service | marketing
    progress: false                           # true: "Step 2 of 5" on ask/collect steps
    steps:
      - wait: 1d
      - id: how
        ask: utter_checkin_question
        slot: feeling
        buttons:
          - {title: utter_checkin_great, value: great, next: great}
          - {title: utter_checkin_help, value: help, next: help}
      - id: great
        say: utter_checkin_glad
        next: end
      - id: help
        handoff: checkin
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.content import conditions
from bot.content.conditions import Cond, ConditionError, Env
from bot.content.durations import parse_duration
from bot.content.loader import ContentError, Doc, PathKey, Problem, walk_files
from bot.flows.model import (
    END,
    STEP_KINDS,
    TRIGGER_KINDS,
    VALIDATORS,
    Branch,
    Choice,
    Flow,
    FlowBook,
    Step,
    Trigger,
)

OTHER_FILES = ("lifecycle.yml", "prompts.yml")  # other features' files in flows/
_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_RESPONSE = re.compile(r"^utter_[\w/.-]+$")
_EVENT = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
SETTABLE = ("email", "language", "timezone", "preferred_channel", "display_name")
_COMMON = ("id", "next", "progress")
_KEYS: dict[str, tuple[str, ...]] = {
    "say": ("buttons",),
    "ask": ("buttons", "slot"),
    "collect": ("ask", "validate", "invalid", "save"),
    "wait": (),
    "branch": (),
    "call": (),
    "handoff": (),
    "set": (),
    "record": (),
    "end": (),
}


@dataclass
class LoadResult:
    book: FlowBook
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def flow_files(flows_dir: Path) -> list[Path]:
    return [p for p in walk_files(flows_dir) if p.name not in OTHER_FILES]


def load_folder(flows_dir: Path, env: Env) -> LoadResult:
    """Every flow file of ``flows_dir``; problems are collected, not raised."""
    result = LoadResult(FlowBook())
    for path in flow_files(flows_dir):
        try:
            doc = Doc.load(path)
        except ContentError as e:
            result.problems.append(Problem(e.path, e.line, e.problem))
            continue
        load_doc(doc, env, result)
    return result


def load_doc(doc: Doc, env: Env, result: LoadResult) -> None:
    data = doc.data
    if not isinstance(data, Mapping) or "flows" not in data:
        result.problems.append(
            doc.problem((), "a flow file is a mapping with 'flows:' (flow id -> flow)")
        )
        return
    for key in data:
        if key not in ("flows", "version"):
            result.problems.append(doc.problem((key,), f"unknown top-level key {key!r} (flows)"))
    flows = data["flows"]
    if not isinstance(flows, Mapping) or not flows:
        result.problems.append(doc.problem(("flows",), "'flows:' maps flow ids to flows"))
        return
    for flow_id, raw in flows.items():
        at: PathKey = ("flows", flow_id)
        if not isinstance(flow_id, str) or not _ID.match(flow_id):
            result.problems.append(
                doc.problem(at, f"flow id {flow_id!r}: lower-case letters, digits, _ (at most 40)")
            )
            continue
        if flow_id in result.book.flows:
            other = result.book.flows[flow_id]
            result.problems.append(
                doc.problem(
                    at, f"flow {flow_id!r} is defined twice (also {other.path}:{other.line})"
                )
            )
            continue
        try:
            flow = parse_flow(doc, flow_id, raw, env)
        except ContentError as e:
            result.problems.append(Problem(e.path, e.line, e.problem))
            continue
        result.book.flows[flow_id] = flow
        result.problems.extend(check_flow(doc, flow))


def parse_flow(doc: Doc, flow_id: str, raw: Any, env: Env) -> Flow:
    at: PathKey = ("flows", flow_id)
    if not isinstance(raw, Mapping):
        raise doc.error(at, "a flow is a mapping (description, trigger, steps)")
    allowed = ("title", "description", "trigger", "purpose", "progress", "steps")
    for key in raw:
        if key not in allowed:
            raise doc.error((*at, key), f"unknown key {key!r} in a flow ({', '.join(allowed)})")
    flow = Flow(flow_id, str(doc.path), doc.line(at), description=str(raw.get("description", "")))
    if "title" in raw:
        flow.title = _response(doc, raw["title"], (*at, "title"))
    purpose = raw.get("purpose", "service")
    if purpose not in ("service", "marketing"):
        raise doc.error((*at, "purpose"), f"purpose: service or marketing, not {purpose!r}")
    flow.purpose = purpose
    progress = raw.get("progress", False)
    if not isinstance(progress, bool):
        raise doc.error((*at, "progress"), "progress: true or false")
    flow.progress = progress
    trig = raw.get("trigger")
    if trig is not None:
        items = trig if isinstance(trig, list) else [trig]
        base = (*at, "trigger")
        flow.triggers = tuple(
            _trigger(doc, t, (*base, i) if isinstance(trig, list) else base, env)
            for i, t in enumerate(items)
        )
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        raise doc.error((*at, "steps") if "steps" in raw else at, "a flow needs a list of steps")
    for i, s in enumerate(steps):
        step = _step(doc, s, (*at, "steps", i), i, env)
        if step.id in flow.by_id:
            raise doc.error((*at, "steps", i), f"step id {step.id!r} is used twice in the flow")
        if step.id == END:
            raise doc.error((*at, "steps", i), "'end' is reserved: it means the end of the flow")
        flow.by_id[step.id] = len(flow.steps)
        flow.steps.append(step)
    return flow


def _trigger(doc: Doc, raw: Any, at: PathKey, env: Env) -> Trigger:
    if not isinstance(raw, Mapping):
        raise doc.error(at, "a trigger is a mapping, e.g. {event: delivered}")
    kinds = [k for k in raw if k in TRIGGER_KINDS]
    if len(kinds) != 1:
        raise doc.error(
            at,
            f"a trigger names exactly one of {', '.join(TRIGGER_KINDS)} (found {kinds or 'none'})",
        )
    kind = kinds[0]
    for key in raw:
        if key not in (kind, "when", "within", "first"):
            raise doc.error((*at, key), f"unknown key {key!r} in a trigger (when, within, first)")
    first = raw.get("first", False)
    if not isinstance(first, bool) or (first and kind != "event"):
        raise doc.error((*at, "first"), "first: true or false, for event triggers")
    value = raw[kind]
    if not isinstance(value, str) or not value:
        raise doc.error((*at, kind), f"{kind}: a name, not {value!r}")
    if kind == "stage" and env.stages and value not in env.stages:
        raise doc.error((*at, kind), f"unknown stage {value!r} (stages: {', '.join(env.stages)})")
    if kind == "event" and not _EVENT.match(value):
        raise doc.error((*at, kind), f"event type {value!r}: lower-case letters, digits, _ . -")
    within = None
    if "within" in raw:
        if kind not in ("event", "stage"):
            raise doc.error((*at, "within"), "within applies to event and stage triggers")
        try:
            within = parse_duration(raw["within"])
        except ValueError as e:
            raise doc.error((*at, "within"), str(e)) from None
    when = _cond(doc, raw.get("when"), env, (*at, "when"))
    return Trigger(kind, value, when, within, doc.line(at), first)


def _step(doc: Doc, raw: Any, at: PathKey, index: int, env: Env) -> Step:
    if raw == END:
        return Step(f"step_{index + 1}", "end", doc.line(at))
    if not isinstance(raw, Mapping):
        raise doc.error(at, f"a step is a mapping with one of {', '.join(STEP_KINDS)} (or 'end')")
    kinds = [k for k in raw if k in STEP_KINDS]
    if "collect" in kinds and "ask" in kinds:  # a collect step's question is its "ask"
        kinds.remove("ask")
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        raise doc.error(at, f"a step has exactly one of {', '.join(STEP_KINDS)} (found {found})")
    kind = kinds[0]
    allowed = (kind, *_COMMON, *_KEYS[kind])
    for key in raw:
        if key not in allowed:
            raise doc.error(
                (*at, key),
                f"unknown key {key!r} in a {kind} step (allowed: {', '.join(allowed[1:])})",
            )
    step_id = raw.get("id", f"step_{index + 1}")
    if not isinstance(step_id, str) or not _ID.match(step_id):
        raise doc.error((*at, "id"), f"step id {step_id!r}: lower-case letters, digits, _")
    nxt = raw.get("next")
    if nxt is not None and (not isinstance(nxt, str) or not (nxt == END or _ID.match(nxt))):
        raise doc.error((*at, "next"), f"next: a step id or 'end', not {nxt!r}")
    progress = raw.get("progress")
    if progress is not None and not isinstance(progress, bool):
        raise doc.error((*at, "progress"), "progress: true or false")
    value = raw[kind]
    base: dict[str, Any] = {"id": step_id, "kind": kind, "line": doc.line(at), "next": nxt}
    base["progress"] = progress
    here = (*at, kind)
    if kind == "say":
        return Step(
            **base,
            response=_response(doc, value, here),
            choices=_buttons(doc, raw.get("buttons"), (*at, "buttons"), links_only=True),
        )
    if kind == "ask":
        slot = raw.get("slot")
        if slot is not None and (not isinstance(slot, str) or not _ID.match(slot)):
            raise doc.error((*at, "slot"), f"slot {slot!r}: lower-case letters, digits, _")
        return Step(
            **base,
            response=_response(doc, value, here),
            choices=_buttons(doc, raw.get("buttons"), (*at, "buttons"), links_only=False),
            slot=slot,
        )
    if kind == "collect":
        if not isinstance(value, str) or not _ID.match(value):
            raise doc.error(
                here, f"collect: the slot name (lower-case letters, digits, _), not {value!r}"
            )
        if "ask" not in raw:
            raise doc.error(at, "a collect step needs 'ask' (the question, a response name)")
        validate, pattern, options = _validator(doc, raw.get("validate", "text"), (*at, "validate"))
        save = raw.get("save")
        if save is not None and not (
            save in SETTABLE
            or (isinstance(save, str) and save.startswith("attributes.") and _ID.match(save[11:]))
        ):
            raise doc.error(
                (*at, "save"), f"save: attributes.<name> or one of {', '.join(SETTABLE)}"
            )
        invalid = raw.get("invalid")
        return Step(
            **base,
            response=_response(doc, raw["ask"], (*at, "ask")),
            slot=value,
            validate=validate,
            pattern=pattern,
            options=options,
            invalid=_response(doc, invalid, (*at, "invalid")) if invalid else None,
            save=save,
        )
    if kind == "wait":
        try:
            duration = parse_duration(value)
        except ValueError as e:
            raise doc.error(here, str(e)) from None
        return Step(**base, duration=duration)
    if kind == "branch":
        return Step(**base, branches=_branches(doc, value, here, env))
    if kind == "call":
        if not isinstance(value, str) or not _ID.match(value):
            raise doc.error(here, f"call: a flow id, not {value!r}")
        return Step(**base, flow=value)
    if kind == "handoff":
        reason = "flow" if value in (None, True) else value
        if not isinstance(reason, str) or not _ID.match(reason):
            raise doc.error(here, f"handoff: a reason (a short name), not {value!r}")
        return Step(**base, reason=reason)
    if kind == "set":
        if not isinstance(value, Mapping) or not value:
            raise doc.error(
                here, "set: a mapping of attributes.<name> (or a contact field) to a value"
            )
        pairs = []
        for k, v in value.items():
            if not (k in SETTABLE or (str(k).startswith("attributes.") and _ID.match(str(k)[11:]))):
                raise doc.error(
                    (*here, k), f"set: attributes.<name> or one of {', '.join(SETTABLE)}, not {k!r}"
                )
            if isinstance(v, list | dict):
                raise doc.error((*here, k), "set: a single value (text, number, true/false)")
            pairs.append((str(k), v))
        return Step(**base, values=tuple(pairs))
    if kind == "record":
        if not isinstance(value, str) or not _EVENT.match(value):
            raise doc.error(here, f"record: an event type, not {value!r}")
        return Step(**base, event=value)
    if nxt is not None:
        raise doc.error((*at, "next"), "an end step has no next")
    return Step(**base)


def _response(doc: Doc, value: Any, at: PathKey) -> str:
    if not isinstance(value, str) or not _RESPONSE.match(value):
        raise doc.error(at, f"a response name (utter_...), not {value!r}")
    return value


def _buttons(doc: Doc, raw: Any, at: PathKey, *, links_only: bool) -> tuple[Choice, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise doc.error(at, "buttons: a list of {title, value, next, url}")
    out = []
    for i, b in enumerate(raw):
        here = (*at, i)
        if not isinstance(b, Mapping) or "title" not in b:
            raise doc.error(here, "a button is a mapping with a title (a response name)")
        for key in b:
            if key not in ("title", "value", "next", "url"):
                raise doc.error(
                    (*here, key), f"unknown key {key!r} in a button (title, value, next, url)"
                )
        url = b.get("url")
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("https://", "http://"))
        ):
            raise doc.error((*here, "url"), f"url: an http(s) address, not {url!r}")
        if links_only and url is None:
            raise doc.error(here, "a say step's buttons are links (url); use ask for answers")
        nxt = b.get("next")
        if nxt is not None and (not isinstance(nxt, str) or not (nxt == END or _ID.match(nxt))):
            raise doc.error((*here, "next"), f"next: a step id or 'end', not {nxt!r}")
        if url is not None and nxt is not None:
            raise doc.error(here, "a link button (url) opens a page; it has no next")
        value = b.get("value")
        out.append(
            Choice(
                _response(doc, b["title"], (*here, "title")),
                None if value is None else str(value),
                nxt,
                url,
                doc.line(here),
            )
        )
    return tuple(out)


def _validator(doc: Doc, raw: Any, at: PathKey) -> tuple[str, str | None, tuple[str, ...]]:
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((kind, arg),) = raw.items()
        if kind == "regex":
            if not isinstance(arg, str):
                raise doc.error(at, "validate: {regex: PATTERN}")
            try:
                re.compile(arg)
            except re.error as e:
                raise doc.error(at, f"validate: bad regular expression: {e}") from None
            return "regex", arg, ()
        if kind == "choice":
            if not isinstance(arg, list) or not arg:
                raise doc.error(at, "validate: {choice: [a, b, ...]}")
            return "choice", None, tuple(str(a) for a in arg)
    if isinstance(raw, str) and raw in VALIDATORS and raw not in ("regex", "choice"):
        return raw, None, ()
    raise doc.error(
        at,
        f"validate: one of text, email, number, integer, phone, date, {{regex: ...}}, "
        f"{{choice: [...]}}; not {raw!r}",
    )


def _branches(doc: Doc, raw: Any, at: PathKey, env: Env) -> tuple[Branch, ...]:
    if not isinstance(raw, list) or not raw:
        raise doc.error(
            at, "branch: a list of {if: condition, then: step} and an optional {else: step}"
        )
    out = []
    for i, b in enumerate(raw):
        here = (*at, i)
        if not isinstance(b, Mapping):
            raise doc.error(here, "a branch is {if: condition, then: step} or {else: step}")
        if "else" in b:
            if set(b) != {"else"}:
                raise doc.error(here, "an else branch has only 'else: step'")
            if i != len(raw) - 1:
                raise doc.error(here, "else comes last in a branch")
            target = b["else"]
            cond: Cond | None = None
        else:
            if set(b) != {"if", "then"}:
                raise doc.error(here, "a branch is {if: condition, then: step}")
            target = b["then"]
            cond = _cond(doc, b["if"], env, (*here, "if"))
        if not isinstance(target, str) or not (target == END or _ID.match(target)):
            raise doc.error(here, f"a branch goes to a step id or 'end', not {target!r}")
        out.append(Branch(cond, target, doc.line(here)))
    return tuple(out)


def _cond(doc: Doc, raw: Any, env: Env, at: PathKey) -> Cond:
    try:
        return conditions.parse(raw, Env(env.segments, env.rfm, True, env.stages))
    except ConditionError as e:
        raise ContentError(doc.path, doc.line((*at, *e.at)), str(e)) from None


def successors(flow: Flow, step: Step) -> list[str]:
    """Where the flow may go after ``step`` (``end`` included)."""
    if step.kind == "end":
        return []
    if step.kind == "branch":
        out = [b.then for b in step.branches]
        if step.branches[-1].when is not None:  # no else: falls through
            out.append(flow.following(step))
        return out
    if step.kind == "ask":
        answers = [c for c in step.choices if c.url is None]
        out = [c.next or flow.following(step) for c in answers]
        if not answers or any(c.next is None for c in answers):
            out.append(flow.following(step))
        return out
    return [flow.following(step)]


def check_flow(doc: Doc, flow: Flow) -> list[Problem]:
    """Checks inside one flow: jump targets exist, every step is reachable."""
    problems: list[Problem] = []
    steps_at: PathKey = ("flows", flow.id, "steps")
    for i, step in enumerate(flow.steps):
        for target in step.targets():
            if target != END and target not in flow.by_id:
                problems.append(
                    doc.problem(
                        (*steps_at, i),
                        f"step {step.id!r} goes to {target!r}, which is not a step of {flow.id!r}",
                    )
                )
    if problems:
        return problems
    seen: set[str] = set()
    todo = [flow.steps[0].id]
    while todo:
        sid = todo.pop()
        if sid == END or sid in seen:
            continue
        seen.add(sid)
        cur = flow.step(sid)
        assert cur is not None
        todo.extend(successors(flow, cur))
    for i, step in enumerate(flow.steps):
        if step.id not in seen:
            problems.append(
                doc.problem((*steps_at, i), f"step {step.id!r} of {flow.id!r} is unreachable")
            )
    return problems
