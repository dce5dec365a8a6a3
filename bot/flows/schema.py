"""Pydantic models of the parts of ``flows/*.yml`` (a flow, a trigger, each kind of step).

:mod:`bot.flows.loader` validates each part with :meth:`bot.content.loader.Doc.validate`
(errors name ``file:line``), then turns it into the :mod:`bot.flows.model` dataclasses and
checks what needs more than the part itself (conditions, stages, step targets).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from bot.content.durations import parse_duration
from bot.content.loader import FieldError
from bot.flows.model import END, VALIDATORS

ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_RESPONSE = re.compile(r"^utter_[\w/.-]+$")
_EVENT = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
SETTABLE = ("email", "language", "timezone", "preferred_channel", "display_name")


def _matching(ok: Callable[[str], object], message: str) -> BeforeValidator:
    """A text ``ok`` accepts; else ``message`` (``{0!r}``: the value) as a :class:`FieldError`."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or not ok(value):
            raise FieldError(message.format(value))
        return value

    return BeforeValidator(check)


def _duration(value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as e:
        raise FieldError(str(e)) from None


def settable(name: str) -> bool:
    """A contact field a flow may set: one of :data:`SETTABLE` or ``attributes.<name>``."""
    return name in SETTABLE or (name.startswith("attributes.") and bool(ID.match(name[11:])))


Response = Annotated[str, _matching(_RESPONSE.match, "a response name (utter_...), not {0!r}")]
StepId = Annotated[str, _matching(ID.match, "step id {0!r}: lower-case letters, digits, _")]
Target = Annotated[
    str, _matching(lambda v: v == END or ID.match(v), "next: a step id or 'end', not {0!r}")
]
Slot = Annotated[str, _matching(ID.match, "slot {0!r}: lower-case letters, digits, _")]
Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Part(BaseModel):
    """Unknown keys are errors: a typo must not be ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _steps(raw: Any) -> Any:
    if not isinstance(raw, list) or not raw:
        raise FieldError("a flow needs a list of steps")
    return raw


def _name(kind: str) -> BeforeValidator:
    return _matching(bool, kind + ": a name, not {0!r}")


class FlowSpec(Part):
    title: Response | None = None
    description: Annotated[str, BeforeValidator(str)] = ""
    trigger: Any = None  # one trigger or a list: each checked as a TriggerSpec
    purpose: Literal["service", "marketing"] = "service"
    progress: StrictBool = False
    steps: Annotated[list[Any], BeforeValidator(_steps)]


class TriggerSpec(Part):
    intent: Annotated[str, _name("intent")] | None = None
    event: (
        Annotated[
            str, _matching(_EVENT.match, "event type {0!r}: lower-case letters, digits, _ . -")
        ]
        | None
    ) = None
    stage: Annotated[str, _name("stage")] | None = None
    link: Annotated[str, _name("link")] | None = None
    when: Any = None
    within: Duration | None = None
    first: StrictBool = False

    @property
    def kind(self) -> str:
        return next(k for k in ("intent", "event", "stage", "link") if getattr(self, k))

    @model_validator(mode="after")
    def _one_kind(self) -> TriggerSpec:
        kinds = [k for k in ("intent", "event", "stage", "link") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise FieldError(
                "a trigger names exactly one of intent, event, stage, link "
                f"(found {', '.join(kinds) or 'none'})"
            )
        if self.within is not None and kinds[0] not in ("event", "stage"):
            raise FieldError("within applies to event and stage triggers", ("within",))
        if self.first and kinds[0] != "event":
            raise FieldError("first: true or false, for event triggers", ("first",))
        return self


class ButtonSpec(Part):
    title: Response
    value: Annotated[str, BeforeValidator(str)] | None = None
    next: Target | None = None
    url: (
        Annotated[
            str,
            _matching(
                lambda v: v.startswith(("https://", "http://")),
                "url: an http(s) address, not {0!r}",
            ),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _link_or_answer(self) -> ButtonSpec:
        if self.url is not None and self.next is not None:
            raise FieldError("a link button (url) opens a page; it has no next")
        return self


Buttons = Annotated[list[ButtonSpec], Field(min_length=1)]


class StepSpec(Part):
    """The keys every step may have."""

    id: StepId | None = None
    next: Target | None = None
    progress: StrictBool | None = None


class SayStep(StepSpec):
    say: Response
    buttons: Buttons | None = None

    @model_validator(mode="after")
    def _links_only(self) -> SayStep:
        for i, b in enumerate(self.buttons or ()):
            if b.url is None:
                raise FieldError(
                    "a say step's buttons are links (url); use ask for answers", ("buttons", i)
                )
        return self


class AskStep(StepSpec):
    ask: Response
    buttons: Buttons | None = None
    slot: Slot | None = None


def _validator(raw: Any) -> tuple[str, str | None, tuple[str, ...]]:
    """``validate:`` as (kind, regex pattern, choice options)."""
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, arg),) = raw.items()
        if kind == "regex":
            if not isinstance(arg, str):
                raise FieldError("validate: {regex: PATTERN}")
            try:
                re.compile(arg)
            except re.error as e:
                raise FieldError(f"validate: bad regular expression: {e}") from None
            return "regex", arg, ()
        if kind == "choice":
            if not isinstance(arg, list) or not arg:
                raise FieldError("validate: {choice: [a, b, ...]}")
            return "choice", None, tuple(str(a) for a in arg)
    if isinstance(raw, str) and raw in VALIDATORS and raw not in ("regex", "choice"):
        return raw, None, ()
    raise FieldError(
        "validate: one of text, email, number, integer, phone, date, {regex: ...}, "
        f"{{choice: [...]}}; not {raw!r}"
    )


class CollectStep(StepSpec):
    collect: Annotated[
        str,
        _matching(ID.match, "collect: the slot name (lower-case letters, digits, _), not {0!r}"),
    ]
    ask: Response
    validate_: Annotated[tuple[str, str | None, tuple[str, ...]], BeforeValidator(_validator)] = (
        Field(default=("text", None, ()), alias="validate")
    )
    invalid: Response | None = None
    save: (
        Annotated[
            str,
            _matching(settable, f"save: attributes.<name> or one of {', '.join(SETTABLE)}"),
        ]
        | None
    ) = None


class WaitStep(StepSpec):
    wait: Duration


class BranchSpec(Part):
    if_: Any = Field(default=None, alias="if")
    then: Target | None = None
    else_: Target | None = Field(default=None, alias="else")

    @model_validator(mode="before")
    @classmethod
    def _if_then_or_else(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise FieldError("a branch is {if: condition, then: step} or {else: step}")
        if "else" in data and set(data) != {"else"}:
            raise FieldError("an else branch has only 'else: step'")
        if "else" not in data and set(data) != {"if", "then"}:
            raise FieldError("a branch is {if: condition, then: step}")
        target = data.get("else", data.get("then"))
        if not isinstance(target, str) or not (target == END or ID.match(target)):
            raise FieldError(f"a branch goes to a step id or 'end', not {target!r}")
        return data


def _branches(raw: Any) -> Any:
    if not isinstance(raw, list) or not raw:
        raise FieldError(
            "branch: a list of {if: condition, then: step} and an optional {else: step}"
        )
    for i, b in enumerate(raw[:-1]):
        if isinstance(b, dict) and "else" in b:
            raise FieldError("else comes last in a branch", (i,))
    return raw


class BranchStep(StepSpec):
    branch: Annotated[list[BranchSpec], BeforeValidator(_branches)]


class CallStep(StepSpec):
    call: Annotated[str, _matching(ID.match, "call: a flow id, not {0!r}")]


def _reason(value: Any) -> str:
    reason = "flow" if value in (None, True) else value
    if not isinstance(reason, str) or not ID.match(reason):
        raise FieldError(f"handoff: a reason (a short name), not {value!r}")
    return reason


class HandoffStep(StepSpec):
    handoff: Annotated[str, BeforeValidator(_reason)]


def _values(raw: Any) -> tuple[tuple[str, Any], ...]:
    if not isinstance(raw, dict) or not raw:
        raise FieldError("set: a mapping of attributes.<name> (or a contact field) to a value")
    for k, v in raw.items():
        if not settable(str(k)):
            raise FieldError(
                f"set: attributes.<name> or one of {', '.join(SETTABLE)}, not {k!r}", (k,)
            )
        if isinstance(v, list | dict):
            raise FieldError("set: a single value (text, number, true/false)", (k,))
    return tuple((str(k), v) for k, v in raw.items())


class SetStep(StepSpec):
    set: Annotated[tuple[tuple[str, Any], ...], BeforeValidator(_values)]


class RecordStep(StepSpec):
    record: Annotated[str, _matching(_EVENT.match, "record: an event type, not {0!r}")]


class EndStep(StepSpec):
    end: Any = None

    @model_validator(mode="after")
    def _no_next(self) -> EndStep:
        if self.next is not None:
            raise FieldError("an end step has no next", ("next",))
        return self


STEPS: dict[str, type[StepSpec]] = {
    "say": SayStep,
    "ask": AskStep,
    "collect": CollectStep,
    "wait": WaitStep,
    "branch": BranchStep,
    "call": CallStep,
    "handoff": HandoffStep,
    "set": SetStep,
    "record": RecordStep,
    "end": EndStep,
}
