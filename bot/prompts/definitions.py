"""Prompt definitions from ``flows/prompts.yml``: each prompt is a Pydantic model (the
runtime type itself) read through :meth:`bot.content.loader.Doc.validate`, so every problem
names ``file:line``.

```yaml
segments:                       # named conditions over a contact (see conditions.py)
  repeat_buyers: {purchase_count: {gte: 2}}
suppression:                    # shop events that open / close a complaint
  complaint: {open: [complaint_opened], close: [complaint_resolved]}
prompts:
  - id: review_request
    kind: review                # message (default) | review | nps
    purpose: service            # service | marketing
    priority: 60                # higher goes first when prompts compete for the cap
    trigger: {event: delivered, delay: 7d, at: "10:00"}
    exit: {events: [review_submitted, refunded]}
    reentry: {after: 90d}       # never | always | {after: DURATION}
    response: utter_prompt_review
    variants: [{id: a, response: utter_prompt_review, weight: 1}]   # instead of response
    holdout: 0.1
    goal: {event: review_submitted, within: 14d}
```

Triggers (one per prompt): ``stage`` entered, ``event`` (+ ``where`` on its properties),
``attribute`` date (+ ``offset``), ``schedule`` (cron, in the contact's time zone, with an
``audience``), ``segment`` membership, ``nps`` answer category; each may add ``delay`` and a
local ``at`` time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo

import yaml
from croniter import croniter
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    model_validator,
)

from bot.content.conditions import Always, Cond, ConditionError, Env, parse
from bot.content.loader import Doc, FieldError
from bot.content.models import (
    ContentModel,
    Duration,
    Names,
    PromptsFile,
    Response,
    duration,
    listed,
    matching,
    named,
)

TRIGGERS = ("stage", "event", "attribute", "schedule", "segment", "nps")
Suppression = Literal["handoff", "complaint", "low_csat"]
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_VARIANT_ID = re.compile(r"^[a-z0-9_]{1,32}$")


def _condition(raw: Any, info: ValidationInfo) -> Cond:
    """A condition, naming the segments of ``info.context`` (see :func:`load_prompts`)."""
    try:
        return parse(raw, Env(segments=(info.context or {}).get("segments", {})))
    except ConditionError as e:
        raise FieldError(str(e), e.at) from None


def _segment(value: Any, info: ValidationInfo) -> str | Cond:
    """A segment trigger: a segment's name (of the file or ``flows/lifecycle.yml``) or a
    condition written in place."""
    if isinstance(value, dict):
        return _condition(value, info)
    if not isinstance(value, str):
        raise FieldError("segment: a segment name or a condition")
    ctx = info.context or {}
    known = {*ctx.get("segments", ()), *ctx.get("external", ())}
    if value not in known:
        raise FieldError(
            f"unknown segment {value!r} ({', '.join(sorted(known)) or 'none defined'})"
        )
    return value


def _local_time(value: Any) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise FieldError(f"at {value!r}: a local time HH:MM") from None


def _signed_duration(value: Any) -> timedelta:
    text = str(value).strip()
    return (-1 if text.startswith("-") else 1) * duration(text.lstrip("+-"))


Audience = Annotated[Cond, BeforeValidator(_condition)]


class PromptPart(ContentModel):
    """A part of a prompt; conditions are :class:`Cond` objects, not Pydantic models."""

    model_config = ConfigDict(arbitrary_types_allowed=True)


class Trigger(PromptPart):
    """Exactly one of :data:`TRIGGERS` (``{event: delivered}``), maybe a ``delay`` and a local
    ``at`` time."""

    stage: Annotated[str, named("stage")] | None = None
    event: Annotated[str, named("event")] | None = None
    attribute: Annotated[str, named("attribute")] | None = None
    schedule: (
        Annotated[
            str,
            matching(
                croniter.is_valid, "schedule {0!r} is not a cron expression (m h dom mon dow)"
            ),
        ]
        | None
    ) = None
    segment: Annotated[str | Cond, BeforeValidator(_segment)] | None = None
    nps: Literal["promoter", "passive", "detractor"] | None = None
    delay: Duration = timedelta(0)
    at: Annotated[time, BeforeValidator(_local_time)] | None = None
    where: dict[str, Any] = Field(default_factory=dict)  # event properties
    offset: Annotated[timedelta, BeforeValidator(_signed_duration)] = timedelta(0)  # attribute
    audience: Audience = Always()  # schedule; a segment trigger's segment

    @property
    def kind(self) -> str:
        return next(k for k in TRIGGERS if getattr(self, k) is not None)

    @property
    def value(self) -> str:
        """The stage, event type, attribute, cron expression, segment name (``inline`` for a
        condition written in place), nps category."""
        value = getattr(self, self.kind)
        return value if isinstance(value, str) else "inline"

    @model_validator(mode="after")
    def _one_kind(self, info: ValidationInfo) -> Trigger:
        kinds = [k for k in TRIGGERS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise FieldError(f"a trigger has exactly one of {', '.join(TRIGGERS)}")
        for key, only, problem in (
            ("where", "event", "'where' filters event properties: event triggers only"),
            ("offset", "attribute", "'offset' is for attribute date triggers"),
            ("audience", "schedule", "'audience' of a trigger is for schedules"),
        ):
            if key in self.model_fields_set and kinds[0] != only:
                raise FieldError(problem, (key,))
        if kinds[0] == "schedule" and {"delay", "at"} & self.model_fields_set:
            raise FieldError("a schedule sets its own time: no delay or at")
        if isinstance(self.segment, Cond):
            return self.model_copy(update={"audience": self.segment})
        segments = (info.context or {}).get("segments", {})
        if self.segment in segments:
            return self.model_copy(update={"audience": segments[self.segment]})
        return self

    def due(self, start: datetime, tz: ZoneInfo) -> datetime:
        """When the prompt is due for a trigger that happened at ``start``."""
        when = start + self.delay + self.offset
        if self.at is None:
            return when
        local = when.astimezone(tz)
        due = datetime.combine(local.date(), self.at, tzinfo=tz)
        if due < start + self.offset:  # "at 10:00" after something at 15:00: the next day
            due += timedelta(days=1)
        elif due < local and (self.delay + self.offset) % timedelta(days=1):
            due += timedelta(days=1)  # a delay in hours: the first ``at`` after it
        return due.astimezone(start.tzinfo)


class Variant(PromptPart):
    id: Annotated[
        str,
        matching(
            lambda v: bool(_VARIANT_ID.match(v)) and v != "holdout",
            "variant id {0!r}: short, lower-case, not 'holdout'",
        ),
    ]
    response: Response
    weight: Annotated[float, Strict(), Field(gt=0)] = 1.0


class Exit(PromptPart):
    events: Names = Field(default_factory=list)
    stage_change: StrictBool = True


class Reentry(PromptPart):
    """``never``, ``always`` or ``{after: DURATION}`` (since the last one)."""

    mode: Literal["never", "always", "after"] = "after"
    after: Duration = timedelta(days=30)


def _reentry(raw: Any) -> Any:
    if raw in ("never", "always"):
        return {"mode": raw, "after": 0}
    if isinstance(raw, dict) and set(raw) == {"after"}:
        return raw
    raise FieldError("reentry: never | always | {after: DURATION}")


class Goal(PromptPart):
    event: StrictStr
    within: Duration = timedelta(days=7)


class Prompt(PromptPart):
    """One entry of ``prompts:``; ``response: X`` is the one variant ``{id: a, response: X}``."""

    id: Annotated[str, matching(_ID.match, "prompt id {0!r}: lower-case letters, digits and _")]
    description: Annotated[str, BeforeValidator(str)] = ""
    kind: Literal["message", "review", "nps"] = "message"
    purpose: Literal["service", "marketing"] = "service"
    priority: StrictInt = 50  # higher goes first when prompts compete for the cap
    trigger: Trigger
    response: Response | None = None
    variants: Annotated[tuple[Variant, ...], Field(min_length=1)] = ()
    exit: Exit = Exit()
    reentry: Annotated[Reentry, BeforeValidator(_reentry)] = Reentry()
    holdout: Annotated[float, Strict(), Field(ge=0, lt=1)] = 0.0
    goal: Goal | None = None
    audience: Audience = Always()
    suppress: Annotated[frozenset[Suppression], BeforeValidator(listed)] = frozenset(
        get_args(Suppression)
    )
    quiet_hours: StrictBool = True
    expire_after: Duration = timedelta(days=3)
    channels: Names = Field(default_factory=list)
    _line: int = PrivateAttr(0)

    @property
    def line(self) -> int:
        return self._line

    @property
    def marketing(self) -> bool:
        return self.purpose == "marketing"

    @property
    def responses(self) -> list[str]:
        return [v.response for v in self.variants]

    @model_validator(mode="after")
    def _whole(self, info: ValidationInfo) -> Prompt:
        if (self.response is not None) == ("variants" in self.model_fields_set):
            raise FieldError("a prompt has either 'response' or 'variants'")
        for j, v in enumerate(self.variants):
            if any(o.id == v.id for o in self.variants[:j]):
                raise FieldError(f"duplicate variant id {v.id!r}", ("variants", j, "id"))
        if self.holdout and self.goal is None:
            raise FieldError("a holdout needs a goal to measure lift against", ("holdout",))
        if self.kind == "review":
            self._no_gating()
        self._line = (info.context or {}).get("line", 0)
        if self.response is None:
            return self
        return self.model_copy(update={"variants": (Variant(id="a", response=self.response),)})

    def _no_gating(self) -> None:
        """Review requests go to every eligible buyer: nothing may depend on satisfaction."""
        if self.trigger.kind == "nps":
            raise FieldError(
                "a review prompt cannot be triggered by an NPS answer (review gating: ask everyone)",
                ("trigger",),
            )
        for t in self.audience.tests():
            if any(word in t.field for word in ("nps", "csat", "satisf", "rating", "score")):
                raise FieldError(
                    f"a review prompt cannot depend on {t.field!r} (review gating: ask everyone)",
                    ("audience", t.field),
                )


@dataclass
class PromptBook:
    """Every prompt of the shop, and the indexes the signal receivers need."""

    prompts: dict[str, Prompt] = field(default_factory=dict)
    segments: dict[str, Cond] = field(default_factory=dict)
    complaint_open: frozenset[str] = frozenset()
    complaint_close: frozenset[str] = frozenset()
    path: Path | None = None
    external_segments: frozenset[str] = frozenset()  # lifecycle.yml's, resolved when sweeping

    def by_trigger(self, kind: str, value: str | None = None) -> list[Prompt]:
        return [
            p
            for p in self.prompts.values()
            if p.trigger.kind == kind and (value is None or p.trigger.value == value)
        ]

    @property
    def event_types(self) -> frozenset[str]:
        """Every event type a receiver acts on (triggers, exits, goals, complaints)."""
        out: set[str] = set(self.complaint_open | self.complaint_close)
        for p in self.prompts.values():
            if p.trigger.kind == "event":
                out.add(p.trigger.value)
            out.update(p.exit.events)
            if p.goal:
                out.add(p.goal.event)
        return frozenset(out)

    def response_names(self) -> set[str]:
        return {r for p in self.prompts.values() for r in p.responses}


def load_prompts(path: Path, known_segments: Iterable[str] = ()) -> PromptBook:
    """Read and check ``path``; raises :class:`ContentError` at the first problem.

    ``known_segments``: segments defined elsewhere (``flows/lifecycle.yml``) that segment
    triggers may name besides the file's own ``segments:``."""
    doc = Doc.load(path) if path.exists() else None
    if doc is None or doc.data is None:
        return PromptBook(path=path)
    top = doc.validate(PromptsFile)
    book = PromptBook(path=path, external_segments=frozenset(known_segments))
    for name, cond in top.segments.items():
        try:
            book.segments[name] = parse(cond, Env(segments=dict(book.segments)))
        except ConditionError as e:
            raise doc.error(("segments", name, *e.at), str(e)) from None
    book.complaint_open = frozenset(top.suppression.complaint.open)
    book.complaint_close = frozenset(top.suppression.complaint.close)
    context = {"segments": book.segments, "external": book.external_segments}
    for i in range(len(top.prompts)):
        at = ("prompts", i)
        prompt = doc.validate(Prompt, at, context={**context, "line": doc.line(at)})
        if prompt.id in book.prompts:
            raise doc.error(
                (*at, "id"),
                f"duplicate prompt id {prompt.id!r} (first on line {book.prompts[prompt.id].line})",
            )
        book.prompts[prompt.id] = prompt
    return book


def check_responses(book: PromptBook, responses: Any, languages: list[str]) -> list[str]:
    """Problems with the texts: a response missing in a language (``file:line: ...``)."""
    problems: list[str] = []
    for prompt in book.prompts.values():
        for name in prompt.responses:
            missing = [lang for lang in languages if name not in responses.names(lang)]
            if missing:
                problems.append(
                    f"{book.path}:{prompt.line}: prompt {prompt.id!r}: response {name!r} "
                    f"missing in {', '.join(missing)}"
                )
    return problems


def check_stages(book: PromptBook, lifecycle_file: Path) -> list[str]:
    """Stage triggers naming a stage the shop's ``lifecycle.yml`` does not have."""
    try:
        data = yaml.safe_load(lifecycle_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []  # no lifecycle file (or a broken one: the lifecycle feature reports it)
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict | list) or not stages:
        return []
    known = set(stages)
    return [
        f"{book.path}:{p.line}: prompt {p.id!r}: unknown stage {p.trigger.value!r} "
        f"({lifecycle_file.name} has {', '.join(sorted(known))})"
        for p in book.prompts.values()
        if p.trigger.kind == "stage" and p.trigger.value not in known
    ]
