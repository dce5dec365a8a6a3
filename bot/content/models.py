"""Pydantic models of content files: :meth:`bot.content.loader.Doc.validate` checks a file's
data against one and reports the first problem as ``file:line: field.path: message``.

Files whose checks need more than their own data (flows naming responses) keep those checks
in their loaders, or pass what they need as Pydantic's validation context (a prompt naming
segments: :mod:`bot.prompts.definitions`); they share the types here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from bot.content.durations import parse_duration
from bot.content.loader import FieldError


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_zone)]
"""An IANA time zone name: ``Europe/Berlin``."""


def matching(ok: Callable[[str], object], message: str) -> BeforeValidator:
    """A text ``ok`` accepts; else ``message`` (``{0!r}``: the value) as a :class:`FieldError`."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or not ok(value):
            raise FieldError(message.format(value))
        return value

    return BeforeValidator(check)


def named(kind: str) -> BeforeValidator:
    """A non-empty text: ``<kind>: a name, not ...``."""
    return matching(bool, kind + ": a name, not {0!r}")


def duration(value: Any) -> timedelta:
    """A duration (``90m``, ``7d``; :func:`bot.content.durations.parse_duration`)."""
    try:
        return parse_duration(value)
    except ValueError as e:
        raise FieldError(str(e)) from None


_RESPONSE = re.compile(r"^utter_[\w/.-]+$")
Response = Annotated[str, matching(_RESPONSE.match, "a response name (utter_...), not {0!r}")]
"""A response's name: ``utter_...``."""
Duration = Annotated[timedelta, BeforeValidator(duration)]
"""``30s 90m 36h 7d 2w`` or a number of days (:mod:`bot.content.durations`)."""


class ContentModel(BaseModel):
    """Unknown keys are errors (a typo must not be ignored); an empty section (``support:``
    with nothing below) is the same as a missing one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class ShopSupport(ContentModel):
    hours: str | None = Field(default=None, description="mon-fri 08:00-18:00; sat 10:00-14:00")
    timezone: TimeZoneName | None = None
    holidays: list[date] = Field(default_factory=list, description="2026-12-24, ...")
    answer: str = Field(default="utter_faq/support_hours", description="States the hours")


class ShopLanguage(ContentModel):
    tone: Literal["informal", "formal"] | None = Field(default=None, alias="register")


class ShopGreeting(ContentModel):
    response: str = "utter_greeting"
    suggestions: list[str] = Field(default_factory=list, description="faq/returns, ...")


class ShopFile(ContentModel):
    """``<content>/shop.yml`` (see :mod:`bot.shop`)."""

    support: ShopSupport = ShopSupport()
    languages: dict[str, ShopLanguage] = Field(default_factory=dict)
    greeting: ShopGreeting = ShopGreeting()


# --- internal updates: flows/internal/*.yml and updates/*.md (see bot.internal.content) -------


def _text(value: Any) -> str:
    if (
        isinstance(value, bool)
        or not isinstance(value, str | int | float)
        or not str(value).strip()
    ):
        raise ValueError("must be a non-empty text")
    return str(value).strip()


Text = Annotated[str, BeforeValidator(_text)]
"""A non-empty text (a number is taken as its text), stripped."""
Texts = Text | dict[str, Text]
"""One text, or one per language: ``{en: ..., de: ...}``."""


class UpdatePulse(ContentModel):
    question: Text
    options: list[Annotated[str, BeforeValidator(str)]] = Field(
        default_factory=lambda: ["1", "2", "3", "4", "5"], min_length=2, max_length=10
    )
    anonymous: StrictBool = True
    min_group_size: Annotated[StrictInt, Field(ge=1)] | None = None
    group_by: Literal["department", "title", "language"] = "department"

    @model_validator(mode="before")
    @classmethod
    def _question_only(cls, data: Any) -> Any:
        return {"question": data} if isinstance(data, str) else data


class UpdateLink(ContentModel):
    title: Text | None = None
    url: str

    @field_validator("url")
    @classmethod
    def _web(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("use {title: ..., url: https://...}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _url_only(cls, data: Any) -> Any:
        return {"title": data, "url": data} if isinstance(data, str) else data


class UpdateFile(ContentModel):
    """The keys of an update (the body of a Markdown update is below its front matter)."""

    id: Annotated[str, BeforeValidator(lambda v: str(v).lower())] | None = None
    title: Text
    body: Texts
    audience: Annotated[
        str, BeforeValidator(lambda v: ", ".join(map(str, v)) if isinstance(v, list) else str(v))
    ]
    schedule: str | None = None
    goal: Annotated[str, BeforeValidator(lambda v: _goal(v))] = "engagement"
    delivery: str | None = None
    channel: str | None = None
    priority: Annotated[
        Literal["high", "normal", "low"], BeforeValidator(lambda v: str(v).lower())
    ] = "normal"
    important: StrictBool = False
    topic: Annotated[str, BeforeValidator(lambda v: str(v).strip().lower())] | None = None
    language: str | None = None
    links: list[UpdateLink] = Field(default_factory=list)
    more: Texts | None = None
    pulse: UpdatePulse | None = None
    buttons: StrictBool = Field(default=True, description="The Got it / Tell me more buttons")

    @field_validator("id")
    @classmethod
    def slug(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[a-z0-9][a-z0-9_.-]{0,120}$", v):
            raise ValueError(f"{v!r}: use lower-case letters, digits, '-', '_' or '.'")
        return v


GOALS = ("engagement", "product_knowledge", "staff_retention", "customer_satisfaction", "sales")
GOAL_ALIASES = {
    "retention": "staff_retention",
    "knowledge": "product_knowledge",
    "csat": "customer_satisfaction",
    "satisfaction": "customer_satisfaction",
}


# --- flows/lifecycle.yml: the event and RFM sections (see bot.lifecycle.config) ---------------


class LifecycleEvent(ContentModel):
    """``events: {purchased: {purchase: true}}``: what an event type means."""

    description: str = ""
    activity: StrictBool = Field(default=True, description="Resets the inactivity clock")
    purchase: StrictBool = False
    refund: StrictBool = False


def _thresholds(v: tuple[float, ...]) -> tuple[float, ...]:
    if len(v) != 4 or sorted(v) != list(v):
        raise ValueError("four ascending numbers, e.g. [30, 90, 180, 365]")
    return v


Thresholds = Annotated[tuple[StrictInt | StrictFloat, ...], AfterValidator(_thresholds)]


class LifecycleRfm(ContentModel):
    """``rfm:``: score thresholds (see :class:`bot.content.conditions.Rfm`)."""

    amount_property: str = "amount"  # the purchase and refund events' money
    recency_days: Thresholds | None = None
    frequency: Thresholds | None = None
    monetary: Thresholds | None = None


def _goal(value: Any) -> str:
    goal = str(value).lower().replace(" ", "_").replace("-", "_")
    goal = GOAL_ALIASES.get(goal, goal)
    if goal not in GOALS:
        raise ValueError(f"unknown goal {value!r}; use one of {', '.join(GOALS)}")
    return goal


# --- flows/prompts.yml: the file's sections (see bot.prompts.definitions) ---------------------


def listed(value: Any) -> Any:
    """One name alone is a list of one (a :class:`BeforeValidator` of name lists)."""
    return [value] if isinstance(value, str) else value


Names = Annotated[list[StrictStr], BeforeValidator(listed)]
"""A list of names (one name alone is a list of one)."""


class PromptComplaint(ContentModel):
    open: Names = Field(default_factory=list)
    close: Names = Field(default_factory=list)


class PromptSuppression(ContentModel):
    complaint: PromptComplaint = PromptComplaint()


class PromptsFile(ContentModel):
    """``flows/prompts.yml``; each prompt is a :class:`bot.prompts.definitions.Prompt`,
    validated once the segments it may name are parsed."""

    version: Any = None
    segments: dict[str, Any] = Field(default_factory=dict)
    suppression: PromptSuppression = PromptSuppression()
    prompts: list[Any] = Field(default_factory=list)
