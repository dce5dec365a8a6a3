"""The shop's lifecycle from ``flows/lifecycle.yml``: stages, event and inactivity rules,
segments, RFM thresholds, stage-aware follow-ups. Problems raise ``file:line`` errors.

```yaml
initial: awareness
stages: {awareness: {description: ...}, consideration: {}, ...}
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

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.content import conditions
from bot.content.conditions import Cond, ConditionError, Env, Rfm
from bot.content.durations import parse_duration
from bot.content.loader import ContentError, Doc, PathKey, Problem
from bot.content.models import LifecycleEvent, LifecycleRfm

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
_TOP = (
    "version",
    "initial",
    "stages",
    "events",
    "rfm",
    "transitions",
    "inactivity",
    "segments",
    "followups",
)


@dataclass(frozen=True)
class EventInfo:
    name: str
    description: str = ""
    activity: bool = True  # the person did something: resets the inactivity clock
    purchase: bool = False
    refund: bool = False


@dataclass(frozen=True)
class Transition:
    on: str
    to: str
    sources: tuple[str, ...] | None  # None: from any stage
    when: Cond
    line: int | None

    def describe(self) -> str:
        src = ",".join(self.sources) if self.sources else "*"
        return f"on {self.on}: {src} -> {self.to}"

    def applies(self, stage: str) -> bool:
        return stage != self.to and (self.sources is None or stage in self.sources)


@dataclass(frozen=True)
class InactivityRule:
    sources: tuple[str, ...]
    after: timedelta
    to: str
    line: int | None

    def describe(self) -> str:
        from bot.content.durations import duration_text

        return f"inactive {duration_text(self.after)}: {','.join(self.sources)} -> {self.to}"


@dataclass(frozen=True)
class Followup:
    when: Cond
    response: str
    line: int | None
    purpose: str = "service"  # marketing: only with consent, once a conversation


@dataclass
class LifecycleConfig:
    path: Path | None
    initial: str = "awareness"
    stages: dict[str, str] = field(default_factory=lambda: dict.fromkeys(DEFAULT_STAGES, ""))
    events: dict[str, EventInfo] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    inactivity: list[InactivityRule] = field(default_factory=list)
    segments: dict[str, Cond] = field(default_factory=dict)
    rfm: Rfm = field(default_factory=Rfm)
    amount_property: str = "amount"
    followups: dict[str, list[Followup]] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)

    def event(self, name: str) -> EventInfo:
        return self.events.get(name) or EventInfo(name)

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


def parse(doc: Doc) -> LifecycleConfig:
    data = doc.data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise doc.error((), "the lifecycle file is a mapping (stages:, transitions:, ...)")
    for key in data:
        if key not in _TOP:
            raise doc.error((key,), f"unknown key {key!r} (use {', '.join(_TOP)})")
    cfg = LifecycleConfig(doc.path)

    raw_stages = data.get("stages")
    if raw_stages is not None:
        if isinstance(raw_stages, list):
            raw_stages = dict.fromkeys(raw_stages)
        if not isinstance(raw_stages, Mapping) or not raw_stages:
            raise doc.error(("stages",), "stages: a mapping of stage name to {description}")
        cfg.stages = {}
        for name, info in raw_stages.items():
            if not isinstance(name, str) or not name:
                raise doc.error(("stages",), f"a stage name must be text, not {name!r}")
            if len(name) > 32:
                raise doc.error(("stages", name), f"stage name {name!r} is longer than 32")
            desc = info.get("description", "") if isinstance(info, Mapping) else (info or "")
            cfg.stages[name] = str(desc)
    stages = tuple(cfg.stages)

    def stage(value: Any, at: PathKey) -> str:
        if value not in cfg.stages:
            raise doc.error(at, f"unknown stage {value!r} (stages: {', '.join(stages)})")
        return str(value)

    def stage_list(value: Any, at: PathKey) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise doc.error(at, "an empty list of stages")
        return tuple(
            stage(v, (*at, i) if isinstance(value, list) else at) for i, v in enumerate(items)
        )

    cfg.initial = stage(data.get("initial", stages[0]), ("initial",))

    raw_events = data.get("events") or {}
    if not isinstance(raw_events, Mapping):
        raise doc.error(("events",), "events: a mapping of event type to {activity, purchase}")
    for name in raw_events:
        e = doc.validate(LifecycleEvent, ("events", name)) if raw_events[name] else None
        cfg.events[str(name)] = (
            EventInfo(str(name), e.description, e.activity, e.purchase, e.refund)
            if e
            else EventInfo(str(name))
        )
    rfm = doc.validate(LifecycleRfm, ("rfm",)) if data.get("rfm") is not None else LifecycleRfm()
    if rfm.amount_property is not None:
        cfg.amount_property = rfm.amount_property
    cfg.rfm = Rfm(
        **{k: v for k, v in rfm.model_dump(exclude={"amount_property"}).items() if v is not None}
    )

    _segments(doc, data.get("segments"), cfg)
    env = cfg.env(in_flow=True)  # transitions may look at event.* properties

    raw_tr = data.get("transitions") or []
    if not isinstance(raw_tr, list):
        raise doc.error(("transitions",), "transitions: a list of {on, from, to, when}")
    for i, t in enumerate(raw_tr):
        at: PathKey = ("transitions", i)
        if not isinstance(t, Mapping):
            raise doc.error(at, "a transition is a mapping {on, from, to, when}")
        # YAML 1.1 reads a bare ``on`` key as true
        t = {("on" if k is True else k): v for k, v in t.items()}
        for k in t:
            if k not in ("on", "from", "to", "when"):
                raise doc.error((*at, k), f"unknown key {k!r} in a transition (on, from, to, when)")
        if "on" not in t or "to" not in t:
            raise doc.error(at, "a transition needs 'on' (an event type) and 'to' (a stage)")
        on = t["on"]
        if not isinstance(on, str) or not on:
            raise doc.error((*at, "on"), "'on' is an event type")
        if on not in cfg.events and raw_events:
            cfg.warnings.append(
                doc.problem((*at, "on"), f"event {on!r} is not listed under events:", "warning")
            )
        to = stage(t["to"], (*at, "to"))
        sources = stage_list(t["from"], (*at, "from")) if "from" in t else None
        if sources is not None and to in sources:
            raise doc.error((*at, "from"), f"'from' contains the target stage {to!r}")
        when = _cond(doc, t.get("when"), env, (*at, "when"))
        cfg.transitions.append(Transition(on, to, sources, when, doc.line(at)))

    raw_in = data.get("inactivity") or []
    if not isinstance(raw_in, list):
        raise doc.error(("inactivity",), "inactivity: a list of {from, after, to}")
    for i, r in enumerate(raw_in):
        at = ("inactivity", i)
        if not isinstance(r, Mapping) or not {"from", "after", "to"} <= set(r):
            raise doc.error(
                at, "an inactivity rule needs 'from' (stages), 'after' (e.g. 45d), 'to'"
            )
        for k in r:
            if k not in ("from", "after", "to"):
                raise doc.error((*at, k), f"unknown key {k!r} in an inactivity rule")
        try:
            after = parse_duration(r["after"])
        except ValueError as e:
            raise doc.error((*at, "after"), str(e)) from None
        if after <= timedelta(0):
            raise doc.error((*at, "after"), "'after' must be longer than zero")
        to = stage(r["to"], (*at, "to"))
        sources = stage_list(r["from"], (*at, "from"))
        if to in sources:
            raise doc.error((*at, "from"), f"'from' contains the target stage {to!r}")
        cfg.inactivity.append(InactivityRule(sources, after, to, doc.line(at)))

    raw_f = data.get("followups") or {}
    if not isinstance(raw_f, Mapping):
        raise doc.error(("followups",), "followups: a mapping of intent to [{segment, response}]")
    seg_env = cfg.env()
    for intent, items in raw_f.items():
        at = ("followups", intent)
        if not isinstance(items, list):
            raise doc.error(at, "a list of {when or segment, response}")
        out = []
        for j, item in enumerate(items):
            here: PathKey = (*at, j)
            if not isinstance(item, Mapping) or "response" not in item:
                raise doc.error(
                    here, "a follow-up is {segment: NAME or when: {...}, response: utter_...}"
                )
            cond_raw = {k: v for k, v in item.items() if k not in ("response", "purpose")}
            cond_raw = cond_raw.get("when", cond_raw) if set(cond_raw) == {"when"} else cond_raw
            cond = _cond(doc, cond_raw, seg_env, here)
            purpose = str(item.get("purpose") or "service")
            if purpose not in ("service", "marketing"):
                raise doc.error((*here, "purpose"), "purpose: service or marketing")
            out.append(
                Followup(cond, str(item["response"]), doc.line((*here, "response")), purpose)
            )
        cfg.followups[str(intent)] = out
    return cfg


def _cond(doc: Doc, raw: Any, env: Env, at: PathKey) -> Cond:
    try:
        return conditions.parse(raw, env)
    except ConditionError as e:
        raise ContentError(doc.path, doc.line((*at, *e.at)), str(e)) from None


def _segments(doc: Doc, raw: Any, cfg: LifecycleConfig) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise doc.error(("segments",), "segments: a mapping of name to condition")
    resolved: dict[str, Cond] = {}
    visiting: list[str] = []

    class _Lazy(dict[str, Cond]):
        def __contains__(self, name: object) -> bool:
            return name in raw

        def __getitem__(self, name: str) -> Cond:
            return resolve(name)

        def __iter__(self) -> Iterator[str]:
            return iter(raw)

        def __len__(self) -> int:
            return len(raw)

    def resolve(name: str) -> Cond:
        if name in resolved:
            return resolved[name]
        if name in visiting:
            raise doc.error(
                ("segments", name),
                f"segments refer to each other: {' -> '.join([*visiting, name])}",
            )
        visiting.append(name)
        env = Env(_Lazy(), cfg.rfm, False, tuple(cfg.stages))
        resolved[name] = _cond(doc, raw[name], env, ("segments", name))
        visiting.pop()
        return resolved[name]

    for name in raw:
        if not isinstance(name, str) or not conditions._NAME.match(name):
            raise doc.error(("segments",), f"segment name {name!r}: letters, digits, _")
        resolve(name)
    cfg.segments = {name: resolved[name] for name in raw}
