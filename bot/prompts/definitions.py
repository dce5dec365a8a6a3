"""Prompt definitions from ``flows/prompts.yml``, checked with ``file:line`` errors.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from croniter import croniter

from bot.content.conditions import Always, Cond, ConditionError, Env, parse
from bot.content.durations import parse_duration
from bot.content.loader import Doc
from bot.content.models import PromptsFile

KINDS = ("message", "review", "nps")
PURPOSES = ("service", "marketing")
TRIGGERS = ("stage", "event", "attribute", "schedule", "segment", "nps")
SUPPRESS = ("handoff", "complaint", "low_csat")
NPS_CATEGORIES = ("promoter", "passive", "detractor")
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RESPONSE = re.compile(r"^utter_[\w/.-]+$")


@dataclass(frozen=True)
class Trigger:
    kind: str
    value: str  # the stage, event type, attribute, cron expression, segment name, nps category
    delay: timedelta = timedelta(0)
    at: time | None = None
    where: Mapping[str, Any] = field(default_factory=dict)  # event properties
    offset: timedelta = timedelta(0)  # attribute date trigger
    audience: Cond = field(default_factory=Always)  # schedule / segment

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


@dataclass(frozen=True)
class Variant:
    id: str
    response: str
    weight: float = 1.0


@dataclass(frozen=True)
class Prompt:
    id: str
    trigger: Trigger
    variants: tuple[Variant, ...]
    purpose: str = "service"
    kind: str = "message"
    priority: int = 50
    description: str = ""
    exit_events: frozenset[str] = frozenset()
    exit_on_stage_change: bool = True
    reentry: str = "after"  # never | always | after
    reentry_after: timedelta = timedelta(days=30)
    holdout: float = 0.0
    goal_event: str | None = None
    goal_within: timedelta = timedelta(days=7)
    audience: Cond = field(default_factory=Always)
    suppress: frozenset[str] = frozenset(SUPPRESS)
    quiet_hours: bool = True
    expire_after: timedelta = timedelta(days=3)
    channels: tuple[str, ...] = ()
    line: int = 0

    @property
    def marketing(self) -> bool:
        return self.purpose == "marketing"

    @property
    def responses(self) -> list[str]:
        return [v.response for v in self.variants]


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
            out |= p.exit_events
            if p.goal_event:
                out.add(p.goal_event)
        return frozenset(out)

    def response_names(self) -> set[str]:
        return {r for p in self.prompts.values() for r in p.responses}


# --- parsing --------------------------------------------------------------------------------


def load_prompts(path: Path, known_segments: Iterable[str] = ()) -> PromptBook:
    """Read and check ``path``; raises :class:`ContentError` at the first problem.

    ``known_segments``: segments defined elsewhere (``flows/lifecycle.yml``) that segment
    triggers may name besides the file's own ``segments:``."""
    if not path.exists():
        return PromptBook(path=path)
    doc = Doc.load(path)
    data = doc.data
    if data is None:
        return PromptBook(path=path)
    top = doc.validate(PromptsFile)
    book = PromptBook(path=path, external_segments=frozenset(known_segments))
    for name, cond in top.segments.items():
        book.segments[name] = _condition(doc, book, ("segments", name), cond)
    book.complaint_open = frozenset(top.suppression.complaint.open)
    book.complaint_close = frozenset(top.suppression.complaint.close)
    for i, raw in enumerate(top.prompts):
        prompt = _prompt(doc, ("prompts", i), raw, book)
        if prompt.id in book.prompts:
            raise doc.error(
                ("prompts", i, "id"),
                f"duplicate prompt id {prompt.id!r} (first on line {book.prompts[prompt.id].line})",
            )
        book.prompts[prompt.id] = prompt
    return book


PROMPT_KEYS = {
    "id",
    "description",
    "kind",
    "purpose",
    "priority",
    "trigger",
    "exit",
    "reentry",
    "response",
    "variants",
    "holdout",
    "goal",
    "audience",
    "suppress",
    "quiet_hours",
    "expire_after",
    "channels",
}


def _prompt(doc: Doc, p: tuple[Any, ...], raw: Any, book: PromptBook) -> Prompt:
    if not isinstance(raw, dict):
        raise doc.error(p, "each prompt is a mapping with id, trigger and response")
    _keys(doc, p, raw, PROMPT_KEYS)
    pid = raw.get("id")
    if not isinstance(pid, str) or not _ID.match(pid):
        raise doc.error((*p, "id"), f"prompt id {pid!r}: lower-case letters, digits and _")
    kind = _choice(doc, (*p, "kind"), raw.get("kind", "message"), KINDS)
    purpose = _choice(doc, (*p, "purpose"), raw.get("purpose", "service"), PURPOSES)
    priority = raw.get("priority", 50)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise doc.error((*p, "priority"), "priority is a whole number (higher goes first)")
    if "trigger" not in raw:
        raise doc.error(p, f"prompt {pid!r} has no trigger")
    trigger = _trigger(doc, (*p, "trigger"), raw["trigger"], book)
    variants = _variants(doc, p, raw)
    audience = _condition(doc, book, (*p, "audience"), raw.get("audience"))
    if kind == "review":
        _no_gating(doc, p, trigger, audience)
    exit_events: frozenset[str] = frozenset()
    exit_stage = True
    if "exit" in raw:
        ex = raw["exit"]
        _keys(doc, (*p, "exit"), ex, {"events", "stage_change"})
        exit_events = frozenset(_names(doc, (*p, "exit", "events"), ex.get("events")))
        exit_stage = _bool(doc, (*p, "exit", "stage_change"), ex.get("stage_change", True))
    reentry, after = _reentry(doc, (*p, "reentry"), raw.get("reentry", {"after": "30d"}))
    holdout = raw.get("holdout", 0)
    if not isinstance(holdout, int | float) or isinstance(holdout, bool) or not 0 <= holdout < 1:
        raise doc.error((*p, "holdout"), "holdout is a share between 0 and 1, e.g. 0.1")
    goal_event, within = None, timedelta(days=7)
    if "goal" in raw:
        g = raw["goal"]
        _keys(doc, (*p, "goal"), g, {"event", "within"})
        if not isinstance(g.get("event"), str):
            raise doc.error(
                (*p, "goal"), "goal needs an event, e.g. {event: purchased, within: 7d}"
            )
        goal_event = g["event"]
        within = _duration(doc, (*p, "goal", "within"), g.get("within", "7d"))
    if holdout and not goal_event:
        raise doc.error((*p, "holdout"), "a holdout needs a goal to measure lift against")
    suppress = frozenset(SUPPRESS)
    if "suppress" in raw:
        names = _names(doc, (*p, "suppress"), raw["suppress"])
        for j, n in enumerate(names):
            if n not in SUPPRESS:
                raise doc.error(
                    (*p, "suppress", j), f"unknown suppression {n!r} ({', '.join(SUPPRESS)})"
                )
        suppress = frozenset(names)
    channels = tuple(_names(doc, (*p, "channels"), raw.get("channels")))
    return Prompt(
        id=pid,
        description=str(raw.get("description") or ""),
        kind=kind,
        purpose=purpose,
        priority=priority,
        trigger=trigger,
        variants=variants,
        exit_events=exit_events,
        exit_on_stage_change=exit_stage,
        reentry=reentry,
        reentry_after=after,
        holdout=float(holdout),
        goal_event=goal_event,
        goal_within=within,
        audience=audience,
        suppress=suppress,
        quiet_hours=_bool(doc, (*p, "quiet_hours"), raw.get("quiet_hours", True)),
        expire_after=_duration(doc, (*p, "expire_after"), raw.get("expire_after", "3d")),
        channels=channels,
        line=doc.line(p) or 0,
    )


TRIGGER_KEYS = {"delay", "at", "where", "offset", "audience", *TRIGGERS}


def _trigger(doc: Doc, p: tuple[Any, ...], raw: Any, book: PromptBook) -> Trigger:
    if not isinstance(raw, dict):
        raise doc.error(p, f"a trigger is a mapping with one of {', '.join(TRIGGERS)}")
    _keys(doc, p, raw, TRIGGER_KEYS)
    kinds = [k for k in TRIGGERS if k in raw]
    if len(kinds) != 1:
        raise doc.error(p, f"a trigger has exactly one of {', '.join(TRIGGERS)}")
    kind = kinds[0]
    value = raw[kind]
    audience = _condition(doc, book, (*p, "audience"), raw.get("audience"))
    if kind == "segment":
        if isinstance(value, dict):
            audience = _condition(doc, book, (*p, "segment"), value)
            value = f"inline:{doc.line((*p, 'segment'))}"
        elif isinstance(value, str):
            if value in book.segments:
                audience = book.segments[value]
            elif value not in book.external_segments:
                known = ", ".join(sorted({*book.segments, *book.external_segments}))
                raise doc.error(
                    (*p, "segment"), f"unknown segment {value!r} ({known or 'none defined'})"
                )
        else:
            raise doc.error((*p, "segment"), "segment: a segment name or a condition")
    elif not isinstance(value, str) or not value:
        raise doc.error((*p, kind), f"{kind}: a name is needed")
    if kind == "schedule" and not croniter.is_valid(value):
        raise doc.error(
            (*p, kind), f"schedule {value!r} is not a cron expression (m h dom mon dow)"
        )
    if kind == "nps" and value not in NPS_CATEGORIES:
        raise doc.error((*p, kind), f"nps: one of {', '.join(NPS_CATEGORIES)}")
    if "where" in raw and kind != "event":
        raise doc.error((*p, "where"), "'where' filters event properties: event triggers only")
    if "offset" in raw and kind != "attribute":
        raise doc.error((*p, "offset"), "'offset' is for attribute date triggers")
    if "audience" in raw and kind not in ("schedule",):
        raise doc.error((*p, "audience"), "'audience' of a trigger is for schedules")
    if kind == "schedule" and ("delay" in raw or "at" in raw):
        raise doc.error(p, "a schedule sets its own time: no delay or at")
    where = raw.get("where") or {}
    if not isinstance(where, dict):
        raise doc.error((*p, "where"), "'where' maps event properties to values")
    at = None
    if "at" in raw:
        try:
            at = time.fromisoformat(str(raw["at"]))
        except ValueError:
            raise doc.error((*p, "at"), f"at {raw['at']!r}: a local time HH:MM") from None
    offset = timedelta(0)
    if "offset" in raw:
        text = str(raw["offset"]).strip()
        sign = -1 if text.startswith("-") else 1
        offset = sign * _duration(doc, (*p, "offset"), text.lstrip("+-"))
    return Trigger(
        kind=kind,
        value=str(value),
        delay=_duration(doc, (*p, "delay"), raw.get("delay", 0)),
        at=at,
        where=where,
        offset=offset,
        audience=audience,
    )


def _variants(doc: Doc, p: tuple[Any, ...], raw: dict[str, Any]) -> tuple[Variant, ...]:
    if ("response" in raw) == ("variants" in raw):
        raise doc.error(p, "a prompt has either 'response' or 'variants'")
    if "response" in raw:
        return (Variant("a", _response(doc, (*p, "response"), raw["response"])),)
    items = raw["variants"]
    if not isinstance(items, list) or not items:
        raise doc.error((*p, "variants"), "variants: a list of {id, response, weight}")
    out: list[Variant] = []
    for j, v in enumerate(items):
        vp = (*p, "variants", j)
        if not isinstance(v, dict):
            raise doc.error(vp, "a variant is {id, response, weight}")
        _keys(doc, vp, v, {"id", "response", "weight"})
        vid = v.get("id")
        if not isinstance(vid, str) or not re.match(r"^[a-z0-9_]{1,32}$", vid) or vid == "holdout":
            raise doc.error((*vp, "id"), f"variant id {vid!r}: short, lower-case, not 'holdout'")
        if any(o.id == vid for o in out):
            raise doc.error((*vp, "id"), f"duplicate variant id {vid!r}")
        weight = v.get("weight", 1)
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0:
            raise doc.error((*vp, "weight"), "weight is a positive number")
        out.append(Variant(vid, _response(doc, (*vp, "response"), v.get("response")), weight))
    return tuple(out)


def _no_gating(doc: Doc, p: tuple[Any, ...], trigger: Trigger, audience: Cond) -> None:
    """Review requests go to every eligible buyer: nothing may depend on satisfaction."""
    if trigger.kind == "nps":
        raise doc.error(
            (*p, "trigger"),
            "a review prompt cannot be triggered by an NPS answer (review gating: ask everyone)",
        )
    for t in audience.tests():
        if any(word in t.field for word in ("nps", "csat", "satisf", "rating", "score")):
            raise doc.error(
                (*p, "audience", t.field),
                f"a review prompt cannot depend on {t.field!r} (review gating: ask everyone)",
            )


def _reentry(doc: Doc, p: tuple[Any, ...], raw: Any) -> tuple[str, timedelta]:
    if raw in ("never", "always"):
        return str(raw), timedelta(0)
    if isinstance(raw, dict) and set(raw) == {"after"}:
        return "after", _duration(doc, (*p, "after"), raw["after"])
    raise doc.error(p, "reentry: never | always | {after: DURATION}")


def _response(doc: Doc, p: tuple[Any, ...], value: Any) -> str:
    if not isinstance(value, str) or not _RESPONSE.match(value):
        raise doc.error(p, f"response {value!r}: a response name such as utter_prompt_review")
    return value


def _condition(doc: Doc, book: PromptBook, p: tuple[Any, ...], raw: Any) -> Cond:
    try:
        return parse(raw, Env(segments=dict(book.segments)))
    except ConditionError as e:
        raise doc.error((*p, *e.at), str(e)) from None


def _keys(doc: Doc, p: tuple[Any, ...], raw: Any, allowed: Iterable[str]) -> None:
    if not isinstance(raw, dict):
        raise doc.error(p, f"expected a mapping ({', '.join(sorted(allowed))})")
    allowed = set(allowed)
    for k in raw:
        if k not in allowed:
            raise doc.error((*p, k), f"unknown key {k!r} (allowed: {', '.join(sorted(allowed))})")


def _names(doc: Doc, p: tuple[Any, ...], raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise doc.error(p, "a list of names")
    return list(raw)


def _choice(doc: Doc, p: tuple[Any, ...], value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise doc.error(p, f"{value!r}: use one of {', '.join(choices)}")
    return str(value)


def _bool(doc: Doc, p: tuple[Any, ...], value: Any) -> bool:
    if not isinstance(value, bool):
        raise doc.error(p, "true or false")
    return value


def _duration(doc: Doc, p: tuple[Any, ...], value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as e:
        raise doc.error(p, str(e)) from None


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
