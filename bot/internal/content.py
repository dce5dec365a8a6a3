"""Update files: ``flows/internal/*.yml`` and ``updates/*.md`` (Markdown with YAML front matter).

An ``updates/*.md`` file::

    ---
    title: The spring collection is live
    audience: department:support        # see bot.internal.audiences
    schedule: 2026-01-12 09:00           # each recipient's local time ("... Europe/Berlin": fixed)
    goal: product_knowledge              # engagement | product_knowledge | staff_retention |
                                         # customer_satisfaction | sales
    delivery: dm                         # dm (default) or channel (with channel: C0123)
    priority: normal                     # high | normal | low (low: weekly digest)
    important: false                     # passes the weekly cap (itself limited)
    topic: launch                        # employees may mute or subscribe to a topic
    language: en                         # language of this file; name.de.md translates it
    links: [{title: Product page, url: "https://example.com/spring"}]
    more: A longer text sent on "Tell me more".
    ---
    The body, in Markdown.

A ``flows/internal/*.yml`` file has the same keys plus ``body`` (a text, or one per language:
``{en: ..., de: ...}``). A ``pulse:`` key (``question``, ``options``, ``anonymous``,
``min_group_size``, ``group_by``) makes the update a pulse survey. Errors name file and line.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.content.loader import ContentError as ContentError  # re-exported: bot.internal.service
from bot.content.loader import Doc
from bot.internal.audiences import AudienceError, parse_audience

GOALS = ("engagement", "product_knowledge", "staff_retention", "customer_satisfaction", "sales")
GOAL_ALIASES = {
    "retention": "staff_retention",
    "knowledge": "product_knowledge",
    "csat": "customer_satisfaction",
    "satisfaction": "customer_satisfaction",
}
PRIORITIES = ("high", "normal", "low")
KNOWN_KEYS = {
    "id",
    "title",
    "body",
    "audience",
    "schedule",
    "goal",
    "delivery",
    "channel",
    "priority",
    "important",
    "topic",
    "language",
    "links",
    "more",
    "pulse",
    "buttons",
}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,120}$")
_FRONT = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*(?:\n|\Z)", re.DOTALL)


@dataclass
class PulseSpec:
    question: str
    options: list[str]
    anonymous: bool = True
    min_group_size: int | None = None
    group_by: str = "department"


@dataclass
class UpdateSpec:
    key: str
    title: str
    bodies: dict[str, str]
    audience: str
    source: str
    language: str = "en"
    titles: dict[str, str] = field(default_factory=dict)
    delivery: str = "dm"
    channel_id: str | None = None
    goal: str = "engagement"
    topic: str | None = None
    priority: str = "normal"
    important: bool = False
    schedule: str | None = None  # "YYYY-MM-DDTHH:MM" wall clock
    schedule_tz: str | None = None  # None: each recipient's own zone
    links: list[dict[str, str]] = field(default_factory=list)
    more: dict[str, str] = field(default_factory=dict)
    buttons: bool = True
    pulse: PulseSpec | None = None

    @property
    def kind(self) -> str:
        return "pulse" if self.pulse else "update"

    def content(self) -> dict[str, Any]:
        """What the ``internal_updates.content`` column keeps for rendering."""
        return {
            "language": self.language,
            "titles": {self.language: self.title, **self.titles},
            "bodies": self.bodies,
            "links": self.links,
            "more": self.more,
            "buttons": self.buttons,
            "pulse": asdict(self.pulse) if self.pulse else None,
        }

    def digest(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k != "source"}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# --- reading files -----------------------------------------------------------------------------


def update_files(content_dir: Path) -> list[Path]:
    """The update files of a content folder, in a stable order."""
    files = sorted((content_dir / "flows" / "internal").glob("*.yml"))
    files += sorted((content_dir / "flows" / "internal").glob("*.yaml"))
    files += sorted((content_dir / "updates").glob("*.md"))
    return [f for f in files if not f.name.startswith(("_", "."))]


def load_folder(
    content_dir: Path, languages: list[str], default_language: str = "en"
) -> tuple[list[UpdateSpec], list[ContentError]]:
    """Every update of a content folder, and the errors of the files that could not be read."""
    specs: dict[str, UpdateSpec] = {}
    translations: list[tuple[Path, str, str]] = []
    errors: list[ContentError] = []
    for path in update_files(content_dir):
        if path.suffix == ".md":
            base, _, lang = path.stem.rpartition(".")
            if base and lang in languages:
                translations.append((path, base, lang))
                continue
        try:
            spec = load_file(path, default_language)
        except ContentError as e:
            errors.append(e)
            continue
        if spec.key in specs:
            errors.append(
                ContentError(path, None, f"id {spec.key!r} is used by {specs[spec.key].source}")
            )
            continue
        specs[spec.key] = spec
    for path, base, lang in translations:
        target = specs.get(base)
        if target is None:
            errors.append(ContentError(path, None, f"translation of {base!r}, which is missing"))
            continue
        try:
            add_translation(target, path, lang)
        except ContentError as e:
            errors.append(e)
    return list(specs.values()), errors


def load_file(path: Path, default_language: str = "en") -> UpdateSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ContentError(path, None, f"cannot read: {e}") from None
    if path.suffix == ".md":
        front, body, offset = split_front_matter(path, text)
        data, lines = _yaml_mapping(path, front, offset)
        if "body" in data:
            raise ContentError(path, lines.get("body"), "a Markdown update has its body below ---")
        data["body"] = body.strip()
        lines.setdefault("body", offset + front.count("\n") + 1)
    else:
        data, lines = _yaml_mapping(path, text, 0)
    return parse_update(path, data, lines, default_language)


def split_front_matter(path: Path, text: str) -> tuple[str, str, int]:
    """(front matter, body, line offset of the front matter)."""
    m = _FRONT.match(text)
    if not m:
        raise ContentError(path, 1, "a Markdown update starts with front matter between --- lines")
    return m.group(1), text[m.end() :], 1


def add_translation(spec: UpdateSpec, path: Path, lang: str) -> None:
    text = path.read_text(encoding="utf-8")
    front, body, offset = split_front_matter(path, text)
    data, lines = _yaml_mapping(path, front, offset)
    extra = set(data) - {"title", "more", "links"}
    if extra:
        key = sorted(extra)[0]
        raise ContentError(
            path, lines.get(key), f"{key!r}: a translation may only set title, more, links"
        )
    if not body.strip():
        raise ContentError(path, offset + front.count("\n") + 2, "the translation has no body")
    spec.bodies[lang] = body.strip()
    if "title" in data:
        spec.titles[lang] = _text(path, lines, data, "title")
    if "more" in data:
        spec.more[lang] = _text(path, lines, data, "more")


def _yaml_mapping(path: Path, text: str, offset: int) -> tuple[dict[str, Any], dict[str, int]]:
    """A YAML mapping and the line (1-based, in the file) of each top-level key."""
    doc = Doc.parse(text, path, offset)
    if not isinstance(doc.data, dict):
        raise ContentError(path, 1 + offset, "expected a mapping of keys (title:, audience:, ...)")
    lines = {str(k): doc.key_line((str(k),)) or 1 + offset for k in doc.data}
    return {str(k): v for k, v in doc.data.items()}, lines


# --- validation --------------------------------------------------------------------------------


def parse_update(
    path: Path, data: dict[str, Any], lines: dict[str, int], default_language: str = "en"
) -> UpdateSpec:
    def err(key: str, problem: str) -> ContentError:
        return ContentError(path, lines.get(key), problem)

    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise err(
            unknown[0], f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KNOWN_KEYS))})"
        )
    key = str(data.get("id") or path.stem).lower()
    if not _SLUG.match(key):
        raise err("id", f"id {key!r}: use lower-case letters, digits, '-', '_' or '.'")
    if "title" not in data:
        raise ContentError(path, 1, "'title' is missing")
    title = _text(path, lines, data, "title")
    language = str(data.get("language") or default_language)
    bodies_raw = data.get("body")
    if isinstance(bodies_raw, dict):
        bodies = {str(k): str(v).strip() for k, v in bodies_raw.items()}
        if language not in bodies:
            language = next(iter(bodies), language)
    elif isinstance(bodies_raw, str) and bodies_raw.strip():
        bodies = {language: bodies_raw.strip()}
    else:
        raise (
            err("body", "the update has no body")
            if "body" in data
            else ContentError(path, 1, "'body' is missing")
        )
    if "audience" not in data:
        raise ContentError(path, 1, "'audience' is missing (e.g. audience: everyone)")
    audience = data["audience"]
    if isinstance(audience, list):
        audience = ", ".join(str(a) for a in audience)
    audience = str(audience)
    try:
        parse_audience(audience)
    except AudienceError as e:
        raise err("audience", str(e)) from None

    goal = str(data.get("goal") or "engagement").lower().replace(" ", "_").replace("-", "_")
    goal = GOAL_ALIASES.get(goal, goal)
    if goal not in GOALS:
        raise err("goal", f"unknown goal {data.get('goal')!r}; use one of {', '.join(GOALS)}")
    priority = str(data.get("priority") or "normal").lower()
    if priority not in PRIORITIES:
        raise err("priority", f"priority {priority!r}: use high, normal or low")
    important = data.get("important", False)
    if not isinstance(important, bool):
        raise err("important", "important: use true or false")

    channel = data.get("channel")
    delivery = str(data.get("delivery") or ("channel" if channel else "dm")).lower()
    if delivery.startswith("channel:"):
        delivery, channel = "channel", delivery.split(":", 1)[1].strip()
    if delivery not in ("dm", "channel"):
        raise err("delivery", f"delivery {delivery!r}: use dm or channel")
    if delivery == "channel" and not channel:
        raise err("delivery", "a channel delivery needs 'channel: <Slack channel id>'")

    schedule, schedule_tz = None, None
    if data.get("schedule") not in (None, "", "draft"):
        try:
            schedule, schedule_tz = parse_schedule(data["schedule"])
        except ValueError as e:
            raise err("schedule", str(e)) from None

    links = []
    for i, link in enumerate(data.get("links") or []):
        if isinstance(link, str):
            link = {"title": link, "url": link}
        if not isinstance(link, dict) or not str(link.get("url", "")).startswith(
            ("https://", "http://")
        ):
            raise err("links", f"link {i + 1}: use {{title: ..., url: https://...}}")
        links.append({"title": str(link.get("title") or link["url"]), "url": str(link["url"])})

    more_raw = data.get("more")
    if isinstance(more_raw, dict):
        more = {str(k): str(v).strip() for k, v in more_raw.items()}
    elif more_raw:
        more = {language: str(more_raw).strip()}
    else:
        more = {}
    topic = str(data["topic"]).strip().lower() if data.get("topic") else None

    pulse = None
    if data.get("pulse") is not None:
        pulse = _pulse(err, data["pulse"])
    buttons = data.get("buttons", True)
    if not isinstance(buttons, bool):
        raise err("buttons", "buttons: use true or false (the Got it / Tell me more buttons)")
    return UpdateSpec(
        key=key,
        title=title,
        bodies=bodies,
        audience=audience,
        source=str(path),
        language=language,
        delivery=delivery,
        channel_id=str(channel) if channel else None,
        goal=goal,
        topic=topic,
        priority=priority,
        important=important,
        schedule=schedule,
        schedule_tz=schedule_tz,
        links=links,
        more=more,
        buttons=buttons,
        pulse=pulse,
    )


def _pulse(err: Any, raw: Any) -> PulseSpec:
    if isinstance(raw, str):
        raw = {"question": raw}
    if not isinstance(raw, dict) or not raw.get("question"):
        raise err("pulse", "pulse: needs a question (pulse: {question: ..., options: [...]})")
    options = [str(o) for o in raw.get("options") or ["1", "2", "3", "4", "5"]]
    if not 2 <= len(options) <= 10:
        raise err("pulse", "pulse: give between 2 and 10 options")
    anonymous = raw.get("anonymous", True)
    min_size = raw.get("min_group_size")
    if not isinstance(anonymous, bool):
        raise err("pulse", "pulse.anonymous: use true or false")
    if min_size is not None and (not isinstance(min_size, int) or min_size < 1):
        raise err("pulse", "pulse.min_group_size: a whole number of at least 1")
    group_by = str(raw.get("group_by") or "department")
    if group_by not in ("department", "title", "language"):
        raise err("pulse", "pulse.group_by: department, title or language")
    return PulseSpec(str(raw["question"]), options, anonymous, min_size, group_by)


def _text(path: Path, lines: dict[str, int], data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str | int | float) or not str(value).strip():
        raise ContentError(path, lines.get(key), f"{key!r} must be a non-empty text")
    return str(value).strip()


def parse_schedule(value: Any) -> tuple[str, str | None]:
    """``"2026-01-12 09:00"`` (recipient's local time) or ``"... Europe/Berlin"`` (fixed zone)
    -> (``"2026-01-12T09:00"``, zone or None)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, second=0, microsecond=0).isoformat(
            timespec="minutes"
        ), None
    if isinstance(value, date):
        raise ValueError(f"schedule {value}: give a time too, e.g. '{value} 09:00'")
    text = str(value).strip()
    zone = None
    parts = text.split()
    if len(parts) == 3 or (len(parts) == 2 and "/" in parts[1]):
        zone = parts.pop()
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"schedule {text!r}: unknown time zone {zone!r}") from None
    try:
        when = datetime.fromisoformat("T".join(parts))
    except ValueError:
        raise ValueError(
            f"schedule {text!r}: use 'YYYY-MM-DD HH:MM' (optionally followed by a time zone)"
        ) from None
    if when.tzinfo is not None:
        raise ValueError(f"schedule {text!r}: name a time zone instead of an offset")
    return when.isoformat(timespec="minutes"), zone


def earliest_utc(scheduled_for: str, schedule_tz: str | None) -> datetime:
    """The first moment the wall-clock time ``scheduled_for`` happens anywhere (UTC+14)."""
    naive = datetime.fromisoformat(scheduled_for)
    if schedule_tz:
        return naive.replace(tzinfo=ZoneInfo(schedule_tz)).astimezone(ZoneInfo("UTC"))
    return naive.replace(tzinfo=ZoneInfo("UTC")) - timedelta(hours=14)
