"""The shop's own facts as content: ``<content>/shop.yml`` (issue 23).

One source of truth that every feature reads: the support hours (the handoff promises a person
in them, a response states them with ``{support_hours}``, ``concierge data validate`` warns when
an answer says other hours), the register of each language's built-in texts (German ``du`` or
``Sie``), and the greeting with its suggested questions::

    support:
      hours: "mon-fri 08:00-18:00; sat 10:00-14:00"
      timezone: Europe/Berlin
      holidays: [2026-12-24]
      answer: utter_faq/support_hours      # the answer that states the hours
    languages:
      de: {register: informal}             # informal (du) | formal (Sie)
    greeting:
      response: utter_greeting             # stage variants: a `condition` on the slot `stage`
      suggestions: [faq/shipping, faq/returns, faq/support_hours]

Every key is optional; a missing file is an empty one. The ``CONCIERGE_HANDOFF_HOURS`` /
``_TIMEZONE`` / ``_HOLIDAYS`` settings, when set, win over the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.content.loader import ContentError, Doc
from bot.content.models import ShopFile

if TYPE_CHECKING:
    from bot.handoff.hours import WorkingHours
    from bot.settings import Settings

FILE_NAME = "shop.yml"
DEFAULT_HOURS = "mon-fri 09:00-17:00"


@dataclass(frozen=True)
class Shop:
    path: Path | None = None
    hours: str | None = None
    timezone: str | None = None
    holidays: tuple[date, ...] = ()
    hours_answer: str = "utter_faq/support_hours"
    registers: dict[str, str] = field(default_factory=dict)
    greeting: str = "utter_greeting"
    suggestions: tuple[str, ...] = ()


def load_shop(content_dir: Path) -> Shop:
    """``<content>/shop.yml``; :class:`ContentError` (file:line) when it is wrong."""
    path = content_dir / FILE_NAME
    if not path.is_file():
        return Shop()
    doc = Doc.load(path)
    if doc.data is None:
        return Shop(path=path)
    if not isinstance(doc.data, dict):
        raise doc.error((), "shop.yml is a mapping (support:, languages:, greeting:)")
    data = doc.validate(ShopFile)
    support = data.support
    if support.hours is not None:
        from bot.handoff.hours import WorkingHours

        try:
            WorkingHours.parse(support.hours, support.timezone or "UTC")
        except Exception as e:  # bad hours (the handoff's grammar)
            raise doc.error(("support", "hours"), str(e)) from None
    return Shop(
        path=path,
        hours=support.hours,
        timezone=support.timezone,
        holidays=tuple(support.holidays),
        hours_answer=support.answer,
        registers={k: v.tone for k, v in data.languages.items() if v.tone},
        greeting=data.greeting.response,
        suggestions=tuple(data.greeting.suggestions),
    )


def support_hours(shop: Shop, settings: Settings) -> WorkingHours:
    """The hours a person answers in: the settings where set, else shop.yml, else
    :data:`DEFAULT_HOURS` in the default time zone."""
    from bot.handoff.hours import WorkingHours

    given = settings.model_fields_set
    spec = settings.handoff_hours or shop.hours or DEFAULT_HOURS
    tz = (
        settings.handoff_timezone
        if "handoff_timezone" in given or not shop.timezone
        else shop.timezone
    )
    holidays = (
        settings.handoff_holidays
        if "handoff_holidays" in given or not shop.holidays
        else list(shop.holidays)
    )
    return WorkingHours.parse(spec, tz, holidays)


_RANGE = re.compile(
    r"(?<![\d.:])(\d{1,2})(?:[:.](\d{2}))?\s*(?:-|–|—|to|bis|till|és|do)\s*"
    r"(\d{1,2})(?:[:.](\d{2}))?(?![\d:])",
    re.IGNORECASE,
)


def hours_problems(
    content_dir: Path, shop: Shop, hours: WorkingHours
) -> list[tuple[str, int | None, str]]:
    """Where the answer that states the support hours (``support.answer``) names a time range
    that is not one of the hours: ``(file, line, message)`` for ``concierge data validate``."""
    base = content_dir / "nlu_data" if (content_dir / "nlu_data").is_dir() else content_dir
    spans = {
        (a.hour * 60 + a.minute, b.hour * 60 + b.minute)
        for w in hours.windows.values()
        for a, b in w
    }
    out: list[tuple[str, int | None, str]] = []
    if not base.is_dir():
        return out
    for f in sorted(base.glob("*/responses.yml")):
        try:
            doc = Doc.load(f)
        except ContentError:
            continue  # reported by the responses check
        for text, line in _variant_texts(doc, shop.hours_answer):
            if "{support_hours}" in text:
                continue
            for m in _RANGE.finditer(text):
                a = int(m.group(1)) * 60 + int(m.group(2) or 0)
                b = int(m.group(3)) * 60 + int(m.group(4) or 0)
                if b > a and (a, b) not in spans:
                    out.append(
                        (
                            str(f),
                            line,
                            f"{shop.hours_answer} says {m.group(0)!r}, but the support hours are "
                            f"{_hours_text(hours)} (shop.yml support.hours or "
                            "CONCIERGE_HANDOFF_HOURS); write {support_hours} to state them",
                        )
                    )
    return out


def _hours_text(hours: WorkingHours) -> str:
    from bot.i18n import describe_hours

    return describe_hours(hours, "en")


def _variant_texts(doc: Doc, name: str) -> list[tuple[str, int | None]]:
    variants = doc.get(("responses", name))
    out: list[tuple[str, int | None]] = []
    for i, item in enumerate(variants if isinstance(variants, list) else []):
        text = item.get("text") if isinstance(item, dict) else item
        if isinstance(text, str):
            out.append((text, doc.line(("responses", name, i))))
    return out
