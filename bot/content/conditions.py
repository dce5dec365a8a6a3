"""Conditions over a contact, written in YAML, evaluated in Python (flows) and in SQL (sweeps).

```yaml
purchase_count: {gte: 2}                 # field: {operator: value}; every entry must hold
lifecycle_stage: retention               # a bare value means eq
stage: [retention, advocacy]             # shorthand for lifecycle_stage (in)
attributes.plan: beans                   # a contact attribute
last_activity_at: {within: 30d}          # dates: within / older_than a duration
rfm.f: {gte: 4}                          # RFM scores 0-5 (0 = never bought)
segment: loyal                           # a named segment of flows/lifecycle.yml
not: {segment: churned}
any: [{segment: repeat}, {monetary_total: {gte: 200}}]
slots.answer: great                      # flows only: a value collected in the flow
event.amount: {gte: 100}                 # flows only: the triggering event's properties
```

Operators: ``eq ne in not_in gt gte lt lte exists within older_than``. The one condition
language of ``flows/*.yml``, ``flows/lifecycle.yml`` and ``flows/prompts.yml`` (audiences,
segments). A bad condition raises :class:`ConditionError` whose ``at`` is the path inside the
condition, so the loader names ``file:line``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, literal, not_, or_, true

from bot.content.durations import parse_duration
from bot.content.loader import PathKey
from bot.storage.models import Contact

FIELDS: dict[str, str] = {  # name -> kind
    "lifecycle_stage": "text",
    "language": "text",
    "timezone": "text",
    "preferred_channel": "text",
    "user_id": "text",
    "email": "text",
    "display_name": "text",
    "purchase_count": "number",
    "monetary_total": "number",
    "marketing_opt_out": "bool",
    "stage_entered_at": "date",
    "last_seen_at": "date",
    "last_activity_at": "date",
    "first_purchase_at": "date",
    "last_purchase_at": "date",
    "created_at": "date",
}
RFM_FIELDS = ("rfm.r", "rfm.f", "rfm.m")
OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "within", "older_than")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ConditionError(ValueError):
    """A bad condition; ``at`` is where inside the condition (for ``file:line``)."""

    def __init__(self, message: str, at: PathKey = ()) -> None:
        super().__init__(message)
        self.at = at


@dataclass(frozen=True)
class Rfm:
    """Score thresholds: recency in days (5 = bought within the first), frequency in
    purchases and monetary in money (score = 1 + thresholds reached, at most 5)."""

    recency_days: tuple[int, ...] = (30, 90, 180, 365)
    frequency: tuple[int, ...] = (2, 3, 5, 10)
    monetary: tuple[float, ...] = (50, 150, 400, 1000)

    def scores(self, contact: Contact, now: datetime) -> tuple[int, int, int]:
        if not contact.purchase_count or contact.last_purchase_at is None:
            return 0, 0, 0
        days = (now - contact.last_purchase_at).total_seconds() / 86400
        r = 5 - sum(1 for t in self.recency_days if days > t)
        f = 1 + sum(1 for t in self.frequency if contact.purchase_count >= t)
        m = 1 + sum(1 for t in self.monetary if float(contact.monetary_total or 0) >= t)
        return max(r, 1), min(f, 5), min(m, 5)

    def sql(self, which: str, now: datetime) -> ColumnElement[Any]:
        bought = and_(Contact.purchase_count > 0, Contact.last_purchase_at.is_not(None))
        if which == "rfm.r":
            whens = [
                (Contact.last_purchase_at >= now - timedelta(days=t), 5 - i)
                for i, t in enumerate(self.recency_days)
            ]
            score: ColumnElement[Any] = case(*whens, else_=1)
        else:
            col: Any = Contact.purchase_count if which == "rfm.f" else Contact.monetary_total
            limits = self.frequency if which == "rfm.f" else self.monetary
            parts = [case((col >= t, 1), else_=0) for t in limits]
            total: Any = literal(1)
            for p in parts:
                total = total + p
            score = case((total > 5, 5), else_=total)
        return case((bought, score), else_=0)


@dataclass
class Facts:
    """What a condition sees in Python: the contact, the time, and in flows slots and event."""

    contact: Contact
    now: datetime
    slots: Mapping[str, Any] = field(default_factory=dict)
    event: Mapping[str, Any] = field(default_factory=dict)


class Cond:
    def sql(self, now: datetime) -> ColumnElement[bool]:
        raise NotImplementedError

    def eval(self, facts: Facts) -> bool:
        raise NotImplementedError

    def matches(self, contact: Contact, now: datetime) -> bool:
        return self.eval(Facts(contact, now))

    def tests(self) -> Iterator[Test]:
        """Every field test inside (segments included)."""
        yield from ()

    @property
    def python_only(self) -> bool:
        return False


@dataclass(frozen=True)
class Always(Cond):
    def __bool__(self) -> bool:  # no condition at all
        return False

    def sql(self, now: datetime) -> ColumnElement[bool]:
        return true()

    def eval(self, facts: Facts) -> bool:
        return True


@dataclass(frozen=True)
class All(Cond):
    """Every item holds (:class:`AnyOf`: at least one)."""

    items: tuple[Cond, ...]

    def tests(self) -> Iterator[Test]:
        for c in self.items:
            yield from c.tests()

    def sql(self, now: datetime) -> ColumnElement[bool]:
        parts = (c.sql(now) for c in self.items)
        return or_(false(), *parts) if isinstance(self, AnyOf) else and_(true(), *parts)

    def eval(self, facts: Facts) -> bool:
        join = any if isinstance(self, AnyOf) else all
        return join(c.eval(facts) for c in self.items)

    @property
    def python_only(self) -> bool:
        return any(c.python_only for c in self.items)


@dataclass(frozen=True)
class AnyOf(All):
    pass


@dataclass(frozen=True)
class Not(Cond):
    item: Cond

    def tests(self) -> Iterator[Test]:
        yield from self.item.tests()

    def sql(self, now: datetime) -> ColumnElement[bool]:
        return not_(self.item.sql(now))

    def eval(self, facts: Facts) -> bool:
        return not self.item.eval(facts)

    @property
    def python_only(self) -> bool:
        return self.item.python_only


@dataclass(frozen=True)
class Test(Cond):
    field: str  # lifecycle_stage | attributes.x | rfm.f | slots.x | event.x
    kind: str  # text | number | date | bool | attr | rfm | slot | event
    op: str
    value: Any
    rfm: Rfm = Rfm()

    @property
    def python_only(self) -> bool:
        return self.kind in ("slot", "event")

    def tests(self) -> Iterator[Test]:
        yield self

    # --- Python ---------------------------------------------------------------------------
    def _get(self, facts: Facts) -> Any:
        c = facts.contact
        if self.kind == "attr":
            return (c.attributes or {}).get(self.field.split(".", 1)[1])
        if self.kind == "slot":
            return facts.slots.get(self.field.split(".", 1)[1])
        if self.kind == "event":
            return facts.event.get(self.field.split(".", 1)[1])
        if self.kind == "rfm":
            return self.rfm.scores(c, facts.now)[RFM_FIELDS.index(self.field)]
        v = getattr(c, self.field)
        if isinstance(v, Decimal):
            return float(v)
        if v is None and self.field == "purchase_count":
            return 0
        return v

    def eval(self, facts: Facts) -> bool:
        v = self._get(facts)
        op, want = self.op, self.value
        if op == "exists":
            return bool((v is not None and v != "") == want)
        if op in ("within", "older_than"):
            stamp = _as_datetime(v)
            if stamp is None:
                return False
            edge = facts.now - want
            return bool(stamp >= edge if op == "within" else stamp < edge)
        if op in ("in", "not_in"):
            hit = any(_same(v, w) for w in want)
            return hit if op == "in" else not hit
        if op == "eq":
            return _same(v, want)
        if op == "ne":
            return not _same(v, want)
        a, b = _comparable(v, want)
        if a is None or b is None:
            return False
        try:
            return bool({"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op])
        except TypeError:
            return False

    # --- SQL --------------------------------------------------------------------------------
    def sql(self, now: datetime) -> ColumnElement[bool]:
        if self.python_only:
            raise ConditionError(f"{self.field} exists only inside a flow, not in SQL")
        col: Any
        want: Any = self.value
        if self.kind == "rfm":
            col = self.rfm.sql(self.field, now)
        elif self.kind == "attr":
            element = Contact.attributes[self.field.split(".", 1)[1]]
            sample = want[0] if isinstance(want, tuple) and want else want
            if self.op in ("within", "older_than", "exists"):
                col = element.as_string()
            elif isinstance(sample, bool):
                col = element.as_boolean()
            elif isinstance(sample, int | float):
                col = element.as_float()
            else:
                col = element.as_string()
                want = tuple(str(w) for w in want) if isinstance(want, tuple) else str(want)
        else:
            col = getattr(Contact, self.field)
            if self.field == "purchase_count":
                col = func.coalesce(col, 0)
        op = self.op
        if op == "exists":
            if self.kind == "text" or self.kind == "attr":
                present = and_(col.is_not(None), col != "")
                return present if want else not_(present)
            test: ColumnElement[bool] = col.is_not(None) if want else col.is_(None)
            return test
        if op in ("within", "older_than"):
            edge: Any = now - want
            if self.kind == "attr":
                edge = edge.strftime("%Y-%m-%dT%H:%M:%S")
            since: ColumnElement[bool] = (col >= edge) if op == "within" else (col < edge)
            return since
        ops: dict[str, Callable[[], Any]] = {
            "eq": lambda: col == want,
            "ne": lambda: or_(col != want, col.is_(None)),
            "in": lambda: col.in_(list(want)),
            "not_in": lambda: or_(col.not_in(list(want)), col.is_(None)),
            "gt": lambda: col > want,
            "gte": lambda: col >= want,
            "lt": lambda: col < want,
            "lte": lambda: col <= want,
        }
        compared: ColumnElement[bool] = ops[op]()
        return compared


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    x, y = _comparable(a, b)
    if x is not None and y is not None and x == y:
        return True
    return a is not None and not isinstance(a, bool) and str(a) == str(b)


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    """Numbers compare as numbers even when one side came from JSON as text."""
    if isinstance(b, bool) or isinstance(a, bool):
        return a, b
    if isinstance(b, int | float):
        try:
            return (float(a) if a is not None else None), float(b)
        except (TypeError, ValueError):
            return None, None
    if isinstance(a, datetime) or isinstance(b, datetime):
        return _as_datetime(a), _as_datetime(b)
    return a, b


def _as_datetime(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return d if d.tzinfo else d.replace(tzinfo=UTC)
    return None


@dataclass
class Env:
    """What a condition may refer to when parsed."""

    segments: Mapping[str, Cond] = field(default_factory=dict)
    rfm: Rfm = field(default_factory=Rfm)
    in_flow: bool = False  # slots.* and event.* allowed
    stages: Sequence[str] = ()


def parse(raw: Any, env: Env, at: PathKey = ()) -> Cond:
    """A condition from YAML; raises :class:`ConditionError` naming the problem and where."""
    if raw is None or raw == {}:
        return Always()
    if isinstance(raw, list):
        return All(tuple(parse(r, env, (*at, i)) for i, r in enumerate(raw)))
    if isinstance(raw, str):  # a bare name: a segment
        return _segment(raw, env, at)
    if not isinstance(raw, Mapping):
        raise ConditionError(
            "a condition is a mapping of field: value (or any/all/not/segment)", at
        )
    items: list[Cond] = []
    for key, spec in raw.items():
        name = str(key)
        here = (*at, name)
        if name in ("any", "all"):
            if not isinstance(spec, list) or not spec:
                raise ConditionError(f"{name}: needs a non-empty list of conditions", here)
            subs = tuple(parse(s, env, (*here, i)) for i, s in enumerate(spec))
            items.append(AnyOf(subs) if name == "any" else All(subs))
        elif name == "not":
            items.append(Not(parse(spec, env, here)))
        elif name == "segment":
            names = spec if isinstance(spec, list) else [spec]
            items.extend(_segment(str(n), env, here) for n in names)
        elif name == "stage":
            stages = spec if isinstance(spec, list) else [spec]
            for s in stages:
                if env.stages and s not in env.stages:
                    raise ConditionError(
                        f"unknown stage {s!r} (stages: {', '.join(env.stages)})", here
                    )
            items.append(
                _test("lifecycle_stage", "in" if isinstance(spec, list) else "eq", spec, env, here)
            )
        elif isinstance(spec, Mapping):
            if not spec:
                raise ConditionError(f"{name}: an empty operator mapping", here)
            for op, value in spec.items():
                items.append(_test(name, str(op), value, env, (*here, str(op))))
        else:
            items.append(_test(name, "eq", spec, env, here))
    return items[0] if len(items) == 1 else All(tuple(items))


def _segment(name: str, env: Env, at: PathKey) -> Cond:
    if name not in env.segments:
        known = ", ".join(sorted(env.segments)) or "none defined"
        raise ConditionError(f"unknown segment {name!r} (segments: {known})", at)
    return env.segments[name]


def _kind(name: str, env: Env, at: PathKey) -> str:
    for prefix, kind in (("attributes.", "attr"), ("slots.", "slot"), ("event.", "event")):
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            if not _NAME.match(rest):
                raise ConditionError(f"{name}: after {prefix!r} comes a plain name", at)
            if kind in ("slot", "event") and not env.in_flow:
                raise ConditionError(f"{name}: {prefix}* is known only inside a flow", at)
            return kind
    if name in RFM_FIELDS:
        return "rfm"
    if name not in FIELDS:
        raise ConditionError(
            f"unknown field {name!r}; use attributes.<name>, rfm.r/f/m, segment, stage, "
            f"any/all/not, or one of {', '.join(sorted(FIELDS))}",
            at,
        )
    return FIELDS[name]


def _test(name: str, op: str, value: Any, env: Env, at: PathKey) -> Test:
    kind = _kind(name, env, at)
    if op not in OPS:
        raise ConditionError(f"{name}: unknown operator {op!r}; use one of {', '.join(OPS)}", at)
    if op in ("within", "older_than"):
        if kind not in ("date", "attr", "slot", "event"):
            raise ConditionError(f"{name}: {op} needs a date field", at)
        try:
            return Test(name, kind, op, parse_duration(value), env.rfm)
        except ValueError as e:
            raise ConditionError(f"{name}: {e}", at) from None
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise ConditionError(f"{name}: {op} needs a non-empty list", at)
        return Test(name, kind, op, tuple(value), env.rfm)
    if op == "exists":
        if not isinstance(value, bool):
            raise ConditionError(f"{name}: exists needs true or false", at)
        return Test(name, kind, op, value, env.rfm)
    if kind in ("number", "rfm") and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise ConditionError(f"{name}: {op} needs a number, not {value!r}", at)
    if kind == "bool" and not isinstance(value, bool):
        raise ConditionError(f"{name}: needs true or false, not {value!r}", at)
    if kind == "date":
        raise ConditionError(f"{name}: a date field takes within/older_than/exists", at)
    if isinstance(value, list | dict):
        raise ConditionError(f"{name}: {op} needs a single value, not {value!r}", at)
    return Test(name, kind, op, value, env.rfm)
