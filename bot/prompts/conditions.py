"""Conditions over a contact, written in YAML, usable both in SQL (sweeps) and in Python.

``{lifecycle_stage: retention, purchase_count: {gte: 2}, attributes.plan: beans}``: every
entry must hold. A value is ``eq``; a mapping names operators: ``eq ne in not_in gt gte lt lte``
``exists`` (true/false), ``older_than`` / ``within`` (a duration, for date fields: the date is
more than / at most that long ago).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, true
from sqlalchemy.sql.elements import ColumnElement as _CE

from bot.prompts.config import parse_duration
from bot.storage.models import Contact

FIELDS: dict[str, str] = {
    # name -> kind (text | number | date | bool)
    "lifecycle_stage": "text",
    "language": "text",
    "timezone": "text",
    "preferred_channel": "text",
    "user_id": "text",
    "email": "text",
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
OPS = {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "older_than", "within"}
# NPS and CSAT answers are not contact fields: a review prompt cannot be gated on them


class ConditionError(ValueError):
    """A bad condition; ``field`` names the entry at fault (for file:line messages)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Test:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Condition:
    tests: tuple[Test, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.tests)

    @classmethod
    def parse(cls, raw: Any) -> Condition:
        """Raises ``ValueError`` with the offending field in the message."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConditionError("a condition is a mapping of field: value or field: {op: value}")
        tests: list[Test] = []
        for name, spec in raw.items():
            name = str(name)
            try:
                kind = _kind(name)
                if isinstance(spec, Mapping):
                    for op, value in spec.items():
                        tests.append(_test(name, kind, str(op), value))
                else:
                    tests.append(_test(name, kind, "eq", spec))
            except ValueError as e:
                raise ConditionError(str(e), name) from None
        return cls(tuple(tests))

    # --- SQL ------------------------------------------------------------------------------
    def sql(self, now: datetime) -> ColumnElement[bool]:
        if not self.tests:
            return true()
        return and_(*(_sql(t, now) for t in self.tests))

    # --- Python ---------------------------------------------------------------------------
    def matches(self, contact: Contact, now: datetime) -> bool:
        return all(_eval(t, contact, now) for t in self.tests)


def _kind(name: str) -> str:
    if name.startswith("attributes."):
        if len(name) <= len("attributes."):
            raise ValueError("attributes.<name>: the attribute name is missing")
        return "attr"
    if name not in FIELDS:
        raise ValueError(
            f"unknown field {name!r}; use attributes.<name> or one of {', '.join(sorted(FIELDS))}"
        )
    return FIELDS[name]


def _test(name: str, kind: str, op: str, value: Any) -> Test:
    if op not in OPS:
        raise ValueError(f"{name}: unknown operator {op!r}; use one of {', '.join(sorted(OPS))}")
    if op in ("older_than", "within"):
        if kind not in ("date", "attr"):
            raise ValueError(f"{name}: {op} needs a date field")
        return Test(name, op, parse_duration(value))
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise ValueError(f"{name}: {op} needs a list")
        return Test(name, op, tuple(value))
    if op == "exists":
        if not isinstance(value, bool):
            raise ValueError(f"{name}: exists needs true or false")
        return Test(name, op, value)
    if kind == "number" and not isinstance(value, int | float):
        raise ValueError(f"{name}: {op} needs a number, not {value!r}")
    return Test(name, op, value)


def _column(name: str) -> Any:
    if name.startswith("attributes."):
        return Contact.attributes[name.split(".", 1)[1]].as_string()
    return getattr(Contact, name)


def _sql(t: Test, now: datetime) -> _CE[bool]:
    col = _column(t.field)
    attr = t.field.startswith("attributes.")
    v = t.value
    if t.op == "exists":
        return col.is_not(None) if v else col.is_(None)  # type: ignore[no-any-return]
    if t.op in ("older_than", "within"):
        edge = now - v
        if attr:  # ISO 8601 text compares in time order
            edge_s = edge.strftime("%Y-%m-%dT%H:%M:%S")
            return (col < edge_s) if t.op == "older_than" else (col >= edge_s)  # type: ignore[no-any-return]
        return (col < edge) if t.op == "older_than" else (col >= edge)  # type: ignore[no-any-return]
    if attr:
        v = [str(x) for x in v] if t.op in ("in", "not_in") else str(v)
    ops = {
        "eq": lambda: col == v,
        "ne": lambda: (col != v) | col.is_(None),
        "in": lambda: col.in_(list(v)),
        "not_in": lambda: col.not_in(list(v)) | col.is_(None),
        "gt": lambda: col > v,
        "gte": lambda: col >= v,
        "lt": lambda: col < v,
        "lte": lambda: col <= v,
    }
    return ops[t.op]()  # type: ignore[no-any-return]


def _value(contact: Contact, name: str) -> Any:
    if name.startswith("attributes."):
        v = (contact.attributes or {}).get(name.split(".", 1)[1])
        return None if v is None else str(v)
    v = getattr(contact, name)
    return float(v) if isinstance(v, Decimal) else v


def _eval(t: Test, contact: Contact, now: datetime) -> bool:
    v = _value(contact, t.field)
    if t.op == "exists":
        return bool((v is not None) == t.value)
    if t.op in ("older_than", "within"):
        if v is None:
            return False
        edge = now - t.value
        if isinstance(v, str):
            stamp = _parse_when(v)
            if stamp is None:
                return False
            v = stamp
        return bool(v < edge) if t.op == "older_than" else bool(v >= edge)
    want: Any = t.value
    if t.field.startswith("attributes."):
        want = [str(x) for x in want] if t.op in ("in", "not_in") else str(want)
    if t.op == "eq":
        return bool(v == want)
    if t.op == "ne":
        return bool(v != want)
    if t.op == "in":
        return v in want
    if t.op == "not_in":
        return v not in want
    if v is None:
        return False
    try:
        return bool(
            {
                "gt": v > want,
                "gte": v >= want,
                "lt": v < want,
                "lte": v <= want,
            }[t.op]
        )
    except TypeError:
        return False


def _parse_when(text: str) -> datetime | None:
    from datetime import UTC

    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def duration_text(d: timedelta) -> str:
    s = int(d.total_seconds())
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0 and s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"
