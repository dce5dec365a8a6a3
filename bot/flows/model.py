"""Flows as data (design §3): a flow, its triggers and each kind of step, as frozen Pydantic
models. The same classes read ``flows/*.yml`` and run: :mod:`bot.flows.loader` validates each
flow with :meth:`bot.content.loader.Doc.validate` (errors name ``file:line``) and a
:class:`Where` as context; conditions become :class:`~bot.content.conditions.Cond` objects
while validating, and each part gets its line. Nothing is validated after loading.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationInfo,
    WrapValidator,
    field_validator,
    model_validator,
)

from bot.content import conditions
from bot.content.conditions import Always, Cond, ConditionError, Env
from bot.content.loader import Doc, FieldError, PathKey
from bot.content.models import Duration, Response, matching, named

END = "end"
TRIGGER_KINDS = ("intent", "event", "stage", "link")
VALIDATORS = ("text", "email", "number", "integer", "phone", "date", "regex", "choice")
ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_URL = re.compile(r"^https?://")
_EVENT = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
SETTABLE = ("email", "language", "timezone", "preferred_channel", "display_name")
P = TypeVar("P", bound="Part")


@dataclass(frozen=True)
class Where:
    """The validation context: the file, where in it the part being validated is, and what
    its conditions may name."""

    doc: Doc
    at: PathKey
    env: Env


def _where(info: ValidationInfo) -> Where:
    where = info.context
    assert isinstance(where, Where), "flow parts are validated with a Where as context"
    return where


def _cond(raw: Any, info: ValidationInfo) -> Cond:
    """A condition (``when:``, ``if:``), checked against the context's ``env``."""
    try:
        return conditions.parse(raw, _where(info).env)
    except ConditionError as e:
        raise FieldError(str(e), e.at) from None


def settable(name: str) -> bool:
    """A contact field a flow may set: one of :data:`SETTABLE` or ``attributes.<name>``."""
    return name in SETTABLE or (name.startswith("attributes.") and bool(ID.match(name[11:])))


StepId = Annotated[str, matching(ID.match, "step id {0!r}: lower-case letters, digits, _")]
Target = Annotated[
    str, matching(lambda v: v == END or ID.match(v), "next: a step id or 'end', not {0!r}")
]
Slot = Annotated[str, matching(ID.match, "slot {0!r}: lower-case letters, digits, _")]
Condition = Annotated[Cond, BeforeValidator(_cond)]


def _runtime(default: Any) -> Any:
    """A field the loader fills (a line, a flow's id) or a kind of step does not have (a say
    step's slot): never a key of the file, so a key of that name is an unknown key."""
    return Field(default, validation_alias="\0")


class Part(BaseModel):
    """Unknown keys are errors: a typo must not be ignored. Fields are read by their names in
    the file (aliases: ``say``, ``if``...); ``line``: where the part starts."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=False, arbitrary_types_allowed=True
    )

    line: int | None = _runtime(None)


def _located(model: type[P], info: ValidationInfo, *below: str | int) -> P:
    """The part ``below`` the one being validated, as a ``model`` with its line; its problems
    raise :class:`~bot.content.loader.ContentError` (file:line)."""
    where = _where(info)
    at: PathKey = (*where.at, *below)
    part = where.doc.validate(model, at, context=replace(where, at=at))
    return part.model_copy(update={"line": where.doc.line(at)})


class Trigger(Part):
    intent: Annotated[str, named("intent")] | None = None
    event: (
        Annotated[
            str, matching(_EVENT.match, "event type {0!r}: lower-case letters, digits, _ . -")
        ]
        | None
    ) = None
    stage: Annotated[str, named("stage")] | None = None
    link: Annotated[str, named("link")] | None = None
    when: Condition = Field(default_factory=Always)
    within: Duration | None = None  # events: not for events older than this (backfills)
    first: StrictBool = False  # events: only the person's first event of that type

    @cached_property
    def kind(self) -> str:
        return next(k for k in TRIGGER_KINDS if getattr(self, k))

    @cached_property
    def value(self) -> str:
        value: str = getattr(self, self.kind)
        return value

    def describe(self) -> str:
        return f"{self.kind}: {self.value}" + (" (first)" if self.first else "")

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise FieldError("a trigger is a mapping, e.g. {event: delivered}")
        return data

    @model_validator(mode="after")
    def _one_kind(self, info: ValidationInfo) -> Trigger:
        kinds = [k for k in TRIGGER_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise FieldError(
                "a trigger names exactly one of intent, event, stage, link "
                f"(found {', '.join(kinds) or 'none'})"
            )
        if self.within is not None and kinds[0] not in ("event", "stage"):
            raise FieldError("within applies to event and stage triggers", ("within",))
        if self.first and kinds[0] != "event":
            raise FieldError("first: true or false, for event triggers", ("first",))
        stages = _where(info).env.stages
        if self.stage is not None and stages and self.stage not in stages:
            raise FieldError(
                f"unknown stage {self.stage!r} (stages: {', '.join(stages)})", ("stage",)
            )
        return self


class Choice(Part):
    """A button of a say (a link) or ask step (an answer)."""

    title: Response  # response name
    value: Annotated[str, BeforeValidator(str)] | None = None
    next: Target | None = None  # step id | "end" | None (the step's next)
    url: Annotated[str, matching(_URL.match, "url: an http(s) address, not {0!r}")] | None = None

    @model_validator(mode="after")
    def _link_or_answer(self) -> Choice:
        if self.url is not None and self.next is not None:
            raise FieldError("a link button (url) opens a page; it has no next")
        return self


def _lines(choices: tuple[Choice, ...], info: ValidationInfo) -> tuple[Choice, ...]:
    where = _where(info)
    at = (*where.at, "buttons")
    line = where.doc.line
    return tuple(c.model_copy(update={"line": line((*at, i))}) for i, c in enumerate(choices))


_BUTTONS = TypeAdapter(Annotated[list[Choice], Field(min_length=1)])  # a list, as in YAML
Buttons = Annotated[
    tuple[Choice, ...],
    WrapValidator(lambda v, inner: () if v is None else inner(_BUTTONS.validate_python(v))),
    AfterValidator(_lines),
]


STEPS: dict[str, type[Step]] = {}  # kind: its class


class Step(Part):
    """The keys every step has; ``response``, ``choices`` and ``slot`` are those of the kinds
    that have them (say, ask, collect) and empty for the others."""

    kind: ClassVar[str]
    interactive: ClassVar[bool] = False  # waits for the person (ask, collect)
    id: StepId = ""  # the loader names a step without one step_<n>
    next: Target | None = None  # explicit next step id | "end"; None: the following step
    progress: StrictBool | None = None  # counts in "Step 2 of 5" (ask/collect by default)
    response: str | None = _runtime(None)  # the text
    choices: tuple[Choice, ...] = _runtime(())  # buttons (answers, links)
    slot: str | None = _runtime(None)  # where the answer goes

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        STEPS[cls.kind] = cls

    def targets(self) -> Iterator[str]:
        """Step ids this step may jump to explicitly."""
        if self.next:
            yield self.next
        for c in self.choices:
            if c.next:
                yield c.next


class SayStep(Step):
    kind = "say"
    response: Response = Field(alias="say")
    choices: Buttons = Field((), alias="buttons")

    @model_validator(mode="after")
    def _links_only(self) -> SayStep:
        for i, b in enumerate(self.choices):
            if b.url is None:
                raise FieldError(
                    "a say step's buttons are links (url); use ask for answers", ("buttons", i)
                )
        return self


class AskStep(Step):
    kind = "ask"
    interactive = True
    response: Response = Field(alias="ask")
    choices: Buttons = Field((), alias="buttons")
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


class CollectStep(Step):
    kind = "collect"
    interactive = True
    slot: Annotated[
        str,
        matching(ID.match, "collect: the slot name (lower-case letters, digits, _), not {0!r}"),
    ] = Field(alias="collect")
    response: Response = Field(alias="ask")
    # (kind, regex pattern, choice options): see bot.flows.validators
    validation: Annotated[tuple[str, str | None, tuple[str, ...]], BeforeValidator(_validator)] = (
        Field(("text", None, ()), alias="validate")
    )
    invalid: Response | None = None  # the text when the answer does not validate
    save: (  # contact field or attributes.<name> to keep the answer in
        Annotated[
            str,
            matching(settable, f"save: attributes.<name> or one of {', '.join(SETTABLE)}"),
        ]
        | None
    ) = None


class WaitStep(Step):
    kind = "wait"
    duration: Duration = Field(alias="wait")


class Branch(Part):
    when: Condition | None = Field(None, alias="if")  # None: else
    then: Target  # step id | "end"

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
        return {"then": target} if "else" in data else data


def _branches(raw: Any) -> Any:
    if not isinstance(raw, list) or not raw:
        raise FieldError(
            "branch: a list of {if: condition, then: step} and an optional {else: step}"
        )
    for i, b in enumerate(raw[:-1]):
        if isinstance(b, dict) and "else" in b:
            raise FieldError("else comes last in a branch", (i,))
    return raw


class BranchStep(Step):
    kind = "branch"
    branches: Annotated[tuple[Branch, ...], BeforeValidator(_branches)] = Field(alias="branch")

    def targets(self) -> Iterator[str]:
        yield from super().targets()
        for b in self.branches:
            yield b.then


class CallStep(Step):
    kind = "call"
    flow: Annotated[str, matching(ID.match, "call: a flow id, not {0!r}")] = Field(alias="call")


def _reason(value: Any) -> str:
    reason = "flow" if value in (None, True) else value
    if not isinstance(reason, str) or not ID.match(reason):
        raise FieldError(f"handoff: a reason (a short name), not {value!r}")
    return reason


class HandoffStep(Step):
    kind = "handoff"
    reason: Annotated[str, BeforeValidator(_reason)] = Field(alias="handoff")


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


class SetStep(Step):
    kind = "set"
    # (field, value or "{slot}")
    values: Annotated[tuple[tuple[str, Any], ...], BeforeValidator(_values)] = Field(alias="set")


class RecordStep(Step):
    kind = "record"
    event: Annotated[str, matching(_EVENT.match, "record: an event type, not {0!r}")] = Field(
        alias="record"
    )


class EndStep(Step):
    kind = "end"
    end: Any = None

    @model_validator(mode="after")
    def _no_next(self) -> EndStep:
        if self.next is not None:
            raise FieldError("an end step has no next", ("next",))
        return self


STEP_KINDS = tuple(STEPS)  # say, ask, ... end: in the order they are declared


def _step(raw: Any, i: int, info: ValidationInfo) -> Step:
    """Step ``i`` of the flow: its kind is the one kind key it has."""
    doc = _where(info).doc
    at: PathKey = (*_where(info).at, "steps", i)
    default_id = f"step_{i + 1}"
    if raw == END:
        return EndStep().model_copy(update={"line": doc.line(at), "id": default_id})
    if not isinstance(raw, Mapping):
        raise doc.error(at, f"a step is a mapping with one of {', '.join(STEP_KINDS)} (or 'end')")
    kinds = [k for k in raw if k in STEPS]
    if "collect" in kinds and "ask" in kinds:  # a collect step's question is its "ask"
        kinds.remove("ask")
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        raise doc.error(at, f"a step has exactly one of {', '.join(STEP_KINDS)} (found {found})")
    step = _located(STEPS[kinds[0]], info, "steps", i)
    return step if step.id else step.model_copy(update={"id": default_id})


class Flow(Part):
    id: str = _runtime("")
    path: str = _runtime("")
    by_id: dict[str, int] = _runtime({})  # step id: its index in steps
    title: Response | None = None  # response name: the flow's name for people
    description: Annotated[str, BeforeValidator(str)] = ""
    purpose: Literal["service", "marketing"] = "service"
    progress: StrictBool = False  # "Step 2 of 5" on ask/collect steps
    triggers: tuple[Trigger, ...] = Field((), alias="trigger")  # one or a list in the file
    steps: tuple[Step, ...]

    @field_validator("triggers", mode="before")
    @classmethod
    def _triggers(cls, raw: Any, info: ValidationInfo) -> tuple[Trigger, ...]:
        """None, one trigger or a list of them."""
        if isinstance(raw, list):
            return tuple(_located(Trigger, info, "trigger", i) for i in range(len(raw)))
        return () if raw is None else (_located(Trigger, info, "trigger"),)

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, raw: Any, info: ValidationInfo) -> tuple[Step, ...]:
        if not isinstance(raw, list) or not raw:
            raise FieldError("a flow needs a list of steps")
        where = _where(info)
        steps: dict[str, Step] = {}
        for i, item in enumerate(raw):
            step = _step(item, i, info)
            at = (*where.at, "steps", i)
            if step.id in steps:
                raise where.doc.error(at, f"step id {step.id!r} is used twice in the flow")
            if step.id == END:
                raise where.doc.error(at, "'end' is reserved: it means the end of the flow")
            steps[step.id] = step
        return tuple(steps.values())

    def first(self) -> str | None:
        return self.steps[0].id if self.steps else None

    def step(self, step_id: str | None) -> Step | None:
        if step_id is None or step_id not in self.by_id:
            return None
        return self.steps[self.by_id[step_id]]

    def following(self, step: Step) -> str:
        """The step after ``step``: its ``next``, else the one below it, else the end."""
        if step.next:
            return step.next
        i = self.by_id[step.id] + 1
        return self.steps[i].id if i < len(self.steps) else END

    def edges(self, step: Step) -> list[tuple[Choice | str | None, str]]:
        """Where the flow may go after ``step`` (``end`` included), each with what leads there:
        an answer, a branch ("if #1", "else", "otherwise") or None (it just goes on)."""
        if isinstance(step, EndStep):
            return []
        after = self.following(step)
        if isinstance(step, BranchStep):
            out: list[tuple[Choice | str | None, str]] = [
                ("else" if b.when is None else f"if #{i + 1}", b.then)
                for i, b in enumerate(step.branches)
            ]
            return out + ([("otherwise", after)] if step.branches[-1].when is not None else [])
        answers = [c for c in step.choices if c.url is None] if isinstance(step, AskStep) else []
        return [(c, c.next or after) for c in answers] or [(None, after)]

    def calls(self) -> list[CallStep]:
        return [s for s in self.steps if isinstance(s, CallStep)]

    def counted(self) -> list[str]:
        """Ids of the steps that count in "Step n of N"."""
        if not self.progress:
            return []
        return [s.id for s in self.steps if s.progress or (s.progress is None and s.interactive)]

    def progress_of(self, step_id: str) -> tuple[int, int] | None:
        counted = self.counted()
        if step_id not in counted:
            return None
        return counted.index(step_id) + 1, len(counted)

    def responses(self) -> Iterator[tuple[str, int | None]]:
        """Every response name the flow uses, with the line that names it."""
        if self.title:
            yield self.title, self.line
        for s in self.steps:
            invalid = s.invalid if isinstance(s, CollectStep) else None
            for name in (s.response, invalid):
                if name:
                    yield name, s.line
            for c in s.choices:
                yield c.title, c.line or s.line


@dataclass
class FlowBook:
    """All flows of the content folder."""

    flows: dict[str, Flow] = field(default_factory=dict)

    def get(self, flow_id: str) -> Flow | None:
        return self.flows.get(flow_id)

    def by_trigger(self, kind: str, value: str) -> list[Flow]:
        return [f for f, _ in self.triggers(kind, value)]

    def triggers(self, kind: str, value: str) -> list[tuple[Flow, Trigger]]:
        return [
            (f, t)
            for f in self.flows.values()
            for t in f.triggers
            if t.kind == kind and t.value == value
        ]

    def __len__(self) -> int:
        return len(self.flows)
