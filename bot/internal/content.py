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
from bot.content.loader import Doc, validate
from bot.content.models import UpdateFile
from bot.internal.audiences import AudienceError, parse_audience

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

    m = validate(UpdateFile, data, path, lambda at: (lines.get(str(at[0])) if at else None) or 1)
    key = m.id or path.stem.lower()
    try:
        UpdateFile.slug(key)  # a file name is an id too
    except ValueError as e:
        raise err("id", f"id {e}") from None
    language = m.language or default_language
    if isinstance(m.body, dict):
        bodies = m.body
        if language not in bodies:
            language = next(iter(bodies), language)
    else:
        bodies = {language: m.body}
    try:
        parse_audience(m.audience)
    except AudienceError as e:
        raise err("audience", str(e)) from None
    channel = m.channel
    delivery = (m.delivery or ("channel" if channel else "dm")).lower()
    if delivery.startswith("channel:"):
        delivery, channel = "channel", delivery.split(":", 1)[1].strip()
    if delivery not in ("dm", "channel"):
        raise err("delivery", f"delivery {delivery!r}: use dm or channel")
    if delivery == "channel" and not channel:
        raise err("delivery", "a channel delivery needs 'channel: <Slack channel id>'")
    schedule, schedule_tz = None, None
    if m.schedule not in (None, "", "draft"):
        try:
            schedule, schedule_tz = parse_schedule(m.schedule)
        except ValueError as e:
            raise err("schedule", str(e)) from None
    p = m.pulse
    return UpdateSpec(
        key=key,
        title=m.title,
        bodies=bodies,
        audience=m.audience,
        source=str(path),
        language=language,
        delivery=delivery,
        channel_id=channel,
        goal=m.goal,
        topic=m.topic or None,
        priority=m.priority,
        important=m.important,
        schedule=schedule,
        schedule_tz=schedule_tz,
        links=[{"title": link.title or link.url, "url": link.url} for link in m.links],
        more=(m.more if isinstance(m.more, dict) else {language: m.more} if m.more else {}),
        buttons=m.buttons,
        pulse=PulseSpec(p.question, p.options, p.anonymous, p.min_group_size, p.group_by)
        if p
        else None,
    )


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
