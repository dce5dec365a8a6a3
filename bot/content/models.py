"""Pydantic models of content files: :meth:`bot.content.loader.Doc.validate` checks a file's
data against one and reports the first problem as ``file:line: field.path: message``.

Files whose checks need more than their own data (flows naming responses, prompts naming
segments) keep their checks in their loaders; they share the types here.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_zone)]
"""An IANA time zone name: ``Europe/Berlin``."""


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
