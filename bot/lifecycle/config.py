"""The shop's lifecycle from ``flows/lifecycle.yml``: stages, event and inactivity rules,
segments, RFM thresholds, stage-aware follow-ups. Each part is a Pydantic model (the
transitions, inactivity rules and follow-ups are the runtime types themselves) read through
:meth:`bot.content.loader.Doc.validate`, so every problem names ``file:line``.

```yaml
initial: awareness            # omitted: the first stage
stages: {awareness: {description: ...}, consideration: {}, ...}   # or a list of names
events:                       # known shop events; activity: false = not something the person did
  purchased: {purchase: true}
  refunded: {refund: true, activity: false}
rfm: {amount_property: amount, recency_days: [30, 90, 180, 365], frequency: [2, 3, 5, 10],
      monetary: [50, 150, 400, 1000]}
transitions:                  # first matching rule wins; from: omitted = any stage
  - {on: purchased, from: [awareness, consideration], to: purchase}
  - {on: purchased, from: [churned], to: reactivated}
inactivity:                   # applied in order by the sweep, set-based
  - {from: [retention, advocacy], after: 45d, to: at-risk}
segments: {customer: {purchase_count: {gte: 1}}}
followups:                    # after an answer to an intent, by segment (first match)
  price_inquiry: [{segment: customer, response: utter_followup_price_customer}]
  # purpose: marketing -> only to people who consented to marketing, once a conversation
```
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.content import conditions
from bot.content.conditions import Always, Cond, ConditionError, Env, Rfm
from bot.content.durations import duration_text
from bot.content.loader import Doc, FieldError, PathKey, Problem
from bot.content.models import (
    ContentModel,
    Duration,
    LifecycleEvent,
    LifecycleRfm,
    listed,
    matching,
)

FILE_NAME = "lifecycle.yml"
DEFAULT_STAGES = (
    "awareness",
    "consideration",
    "purchase",
    "onboarding",
    "retention",
    "advocacy",
    "at-risk",
    "churned",
    "reactivated",
)


def _stage(value: Any, info: ValidationInfo) -> str:
    """A stage named in the context (see :func:`parse`), else in ``stages`` (validated first)."""
    stages = (info.context or info.data).get("stages", {})
    if not isinstance(value, str) or value not in stages:
        raise FieldError(f"unknown stage {value!r} (stages: {', '.join(stages)})")
    return value


def _condition(raw: Any, info: ValidationInfo) -> Cond:
    """A condition, naming the segments of the context's ``env``."""
    if isinstance(raw, Cond):
        return raw
    try:
        return conditions.parse(raw, (info.context or {}).get("env", Env()))
    except ConditionError as e:
        raise FieldError(str(e), e.at) from None


def _positive(after: timedelta) -> timedelta:
    if after <= timedelta(0):
        raise FieldError("'after' must be longer than zero")
    return after


def _named(value: Any) -> Any:
    """``stages: [a, b]`` is ``{a: {}, b: {}}``."""
    if isinstance(value, list) and all(isinstance(v, Hashable) for v in value):
        return dict.fromkeys(value)
    return value


StageName = Annotated[
    str, matching(lambda v: 0 < len(v) <= 32, "stage name {0!r}: a text of 1 to 32 characters")
]
SegmentName = Annotated[
    str, matching(conditions._NAME.match, "segment name {0!r}: letters, digits, _")
]
Stage = Annotated[str, BeforeValidator(_stage)]
Stages = Annotated[tuple[Stage, ...], BeforeValidator(listed), Field(min_length=1)]
Condition = Annotated[Cond, BeforeValidator(_condition)]


class StageInfo(ContentModel):
    """A stage's value: ``{description: ...}``, the description alone, or nothing."""

    description: Annotated[str, BeforeValidator(str)] = ""

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any) -> Any:
        return {"description": data} if isinstance(data, str) else data or {}


class LifecyclePart(ContentModel):
    """An entry of a list of the file (conditions are :class:`Cond` objects); the stages, the
    conditions' :class:`Env` and the entry's ``line`` come from the context (see :func:`parse`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _line: int | None = PrivateAttr(None)

    @property
    def line(self) -> int | None:
        return self._line

    @model_validator(mode="after")
    def _at(self, info: ValidationInfo) -> Self:
        self._line = (info.context or {}).get("line")
        return self


class _Move(LifecyclePart):
    """A rule moving people ``from`` stages ``to`` another."""

    to: Stage
    sources: Stages | None = Field(default=None, alias="from")  # None: from any stage

    @model_validator(mode="after")
    def _away(self) -> Self:
        if self.to in (self.sources or ()):
            raise FieldError(f"'from' contains the target stage {self.to!r}", ("from",))
        return self


class Transition(_Move):
    """``{on: EVENT, from: [STAGE, ...], to: STAGE, when: CONDITION}``."""

    on: Annotated[StrictStr, Field(min_length=1)]
    when: Condition = Always()  # may look at the event's properties (event.*)

    @model_validator(mode="before")
    @classmethod
    def _bare_on(cls, data: Any) -> Any:
        """YAML 1.1 reads a bare ``on`` key as true."""
        if isinstance(data, dict):
            return {("on" if k is True else k): v for k, v in data.items()}
        return data

    def describe(self) -> str:
        src = ",".join(self.sources) if self.sources else "*"
        return f"on {self.on}: {src} -> {self.to}"

    def applies(self, stage: str) -> bool:
        return stage != self.to and (self.sources is None or stage in self.sources)


class InactivityRule(_Move):
    """``{from: [STAGE, ...], after: DURATION, to: STAGE}``."""

    sources: Stages = Field(alias="from")
    after: Annotated[Duration, AfterValidator(_positive)]

    def describe(self) -> str:
        return f"inactive {duration_text(self.after)}: {','.join(self.sources)} -> {self.to}"


class Followup(LifecyclePart):
    """``{segment: NAME, response: utter_...}`` or ``{when: CONDITION, response: ...}``;
    ``line`` is the response's."""

    when: Condition = Always()
    response: StrictStr
    purpose: Literal["service", "marketing"] = "service"  # marketing: with consent, once

    @model_validator(mode="before")
    @classmethod
    def _inline(cls, data: Any, info: ValidationInfo) -> Any:
        """The keys besides response and purpose (``segment: customer``) are the condition
        (of a follow-up: without a response, that is the problem to report)."""
        if not isinstance(data, dict) or "response" not in data:
            return data
        cond = {k: v for k, v in data.items() if k not in ("response", "purpose")}
        if not cond.keys() - {"when"}:
            return data
        return {k: v for k, v in data.items() if k not in cond} | {"when": _condition(cond, info)}


class _Segments(dict[str, Cond]):
    """The file's segments, each parsed when first named, so that one may name another in
    any order; segments naming each other in a loop are an error."""

    def __init__(self, raw: dict[str, Any], rfm: Rfm, stages: tuple[str, ...]) -> None:
        super().__init__()
        self.raw, self.env, self.naming = raw, Env(self, rfm, False, stages), list[str]()

    def __contains__(self, name: object) -> bool:
        return name in self.raw

    def __iter__(self) -> Iterator[str]:  # the names an unknown segment's problem lists
        return iter(self.raw)

    def __missing__(self, name: str) -> Cond:
        if name in self.naming:
            loop = " -> ".join([*self.naming, name])
            raise FieldError(f"segments refer to each other: {loop}", (name,))
        self.naming.append(name)
        try:
            self[name] = conditions.parse(self.raw[name], self.env)
        except ConditionError as e:
            raise FieldError(str(e), (name, *e.at)) from None
        self.naming.pop()
        return self[name]


def _scores(rfm: LifecycleRfm) -> Rfm:
    return Rfm(**rfm.model_dump(exclude={"amount_property"}, exclude_none=True))


class LifecycleFile(ContentModel):
    """``flows/lifecycle.yml``'s top level. The entries of its lists need the stages and
    segments, so :func:`parse` validates them one by one after."""

    version: Any = None
    stages: Annotated[dict[StageName, StageInfo], BeforeValidator(_named), Field(min_length=1)] = (
        Field(default_factory=lambda: dict.fromkeys(DEFAULT_STAGES, StageInfo()))
    )
    initial: Stage | None = None  # omitted: the first stage
    events: dict[str, Annotated[LifecycleEvent, BeforeValidator(lambda v: v or {})]] = {}
    rfm: LifecycleRfm = LifecycleRfm()
    segments: dict[SegmentName, Any] = {}  # parsed into conditions (Cond)
    transitions: list[Any] = []
    inactivity: list[Any] = []
    followups: dict[str, list[Any]] = {}

    @field_validator("segments")
    @classmethod
    def _resolve(cls, raw: dict[str, Any], info: ValidationInfo) -> dict[str, Cond]:
        rfm = _scores(info.data.get("rfm", LifecycleRfm()))
        segments = _Segments(raw, rfm, tuple(info.data.get("stages", ())))
        return {name: segments[name] for name in raw}


@dataclass
class LifecycleConfig:
    path: Path | None
    initial: str = "awareness"
    stages: dict[str, str] = field(default_factory=lambda: dict.fromkeys(DEFAULT_STAGES, ""))
    events: dict[str, LifecycleEvent] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    inactivity: list[InactivityRule] = field(default_factory=list)
    segments: dict[str, Cond] = field(default_factory=dict)
    rfm: Rfm = field(default_factory=Rfm)
    amount_property: str = "amount"
    followups: dict[str, list[Followup]] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)

    def event(self, name: str) -> LifecycleEvent:
        return self.events.get(name) or LifecycleEvent()

    def env(self, *, in_flow: bool = False) -> Env:
        return Env(self.segments, self.rfm, in_flow, tuple(self.stages))

    def responses(self) -> list[tuple[str, int | None]]:
        """Response names the lifecycle refers to, with their lines."""
        return [(f.response, f.line) for fs in self.followups.values() for f in fs]


def find(content_dir: Path) -> Path | None:
    """``<content>/flows/lifecycle.yml``, else the shipped default beside the code."""
    for folder in (content_dir / "flows", Path(__file__).resolve().parents[2] / "flows"):
        p = folder / FILE_NAME
        if p.is_file():
            return p
    return None


def load(path: Path | None) -> LifecycleConfig:
    if path is None:
        return LifecycleConfig(None)
    return parse(Doc.load(path))


P = TypeVar("P", bound=LifecyclePart)


def parse(doc: Doc) -> LifecycleConfig:
    top = doc.validate(LifecycleFile, data={} if doc.data is None else doc.data)
    cfg = LifecycleConfig(
        doc.path,
        initial=top.initial or next(iter(top.stages)),
        stages={name: stage.description for name, stage in top.stages.items()},
        events=top.events,
        segments=top.segments,
        rfm=_scores(top.rfm),
        amount_property=top.rfm.amount_property,
    )

    def entry(model: type[P], at: PathKey, env: Env, line_of: PathKey = ()) -> P:
        context = {"stages": cfg.stages, "env": env, "line": doc.line((*at, *line_of))}
        return doc.validate(model, at, context=context)

    flow = cfg.env(in_flow=True)  # transitions may look at event.* properties
    cfg.transitions = [
        entry(Transition, ("transitions", i), flow) for i in range(len(top.transitions))
    ]
    cfg.inactivity = [
        entry(InactivityRule, ("inactivity", i), flow) for i in range(len(top.inactivity))
    ]
    cfg.followups = {
        intent: [
            entry(Followup, ("followups", intent, j), cfg.env(), ("response",))
            for j in range(len(items))
        ]
        for intent, items in top.followups.items()
    }
    cfg.warnings = [
        doc.problem(
            ("transitions", i, "on"), f"event {t.on!r} is not listed under events:", "warning"
        )
        for i, t in enumerate(cfg.transitions)
        if cfg.events and t.on not in cfg.events
    ]
    return cfg
