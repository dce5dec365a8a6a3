"""Employees: from Slack (``users.list``, translated by ``channels.slack_internal``) or CSV."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.internal.models import Employee


@dataclass
class EmployeeRecord:
    """One person as a directory knows them (channel-neutral)."""

    slack_user_id: str | None = None
    email: str | None = None
    name: str = ""
    department: str | None = None
    title: str | None = None
    language: str | None = None
    timezone: str | None = None
    joined_at: datetime | None = None
    groups: list[str] | None = None  # None: unknown, leave as is
    active: bool = True


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        s = (
            f"{self.created} new, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.deactivated} deactivated"
        )
        return s + (f", {len(self.errors)} error(s)" if self.errors else "")


async def upsert_employees(
    s: AsyncSession,
    records: list[EmployeeRecord],
    *,
    now: datetime,
    source: str = "slack",
    deactivate_missing: bool = False,
) -> SyncResult:
    """Create or update employees; a person is matched by Slack user id, then e-mail.

    Without a join date from the directory, a person first seen by a later sync gets the sync
    time as ``joined_at`` (the first sync cannot tell new hires from everyone else).
    """
    result = SyncResult()
    existing = list((await s.execute(select(Employee))).scalars())
    first_sync = not existing
    by_slack = {e.slack_user_id: e for e in existing if e.slack_user_id}
    by_email = {e.email.casefold(): e for e in existing if e.email}
    seen: set[int] = set()
    for r in records:
        # what the directory says (None: it does not know, the stored value stays)
        values = {
            "slack_user_id": r.slack_user_id,
            "email": r.email,
            "name": r.name or None,
            "department": r.department,
            "title": r.title,
            "language": r.language,
            "timezone": r.timezone,
            "joined_at": r.joined_at,
            "groups": r.groups,
        }
        emp = by_slack.get(r.slack_user_id) if r.slack_user_id else None
        if emp is None and r.email:
            emp = by_email.get(r.email.casefold())
        if emp is None:
            new = {"name": r.name, "joined_at": r.joined_at or (None if first_sync else now)}
            emp = Employee(
                **{**values, **new, "groups": r.groups or []},
                active=r.active,
                subscriptions=[],
                opted_down=[],
                source=source,
                created_at=now,
                updated_at=now,
            )
            s.add(emp)
            await s.flush()
            result.created += 1
            if emp.slack_user_id:
                by_slack[emp.slack_user_id] = emp
            if emp.email:
                by_email[emp.email.casefold()] = emp
            seen.add(emp.id)
            continue
        seen.add(emp.id)
        changed = False
        for attr, value in values.items():
            if value is not None and getattr(emp, attr) != value:
                setattr(emp, attr, value)
                changed = True
        if emp.active != r.active:
            emp.active = r.active
            changed = True
            if not r.active:
                result.deactivated += 1
        if changed:
            emp.updated_at = now
            result.updated += 1
        else:
            result.unchanged += 1
    if deactivate_missing:
        for e in existing:
            if e.id not in seen and e.active and e.source == source:
                e.active = False
                e.updated_at = now
                result.deactivated += 1
    return result


def read_employee_csv(path: Path) -> list[EmployeeRecord]:
    """People from a CSV file with a header row (any of slack_user_id, email, name, department,
    title, language, timezone, joined_at; other columns are ignored).

    Errors name the file and line: ``people.csv:4: joined_at '2026-13-01' is not a date``.
    """
    records = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = {c.strip().lower(): c for c in reader.fieldnames or [] if c}
        if "email" not in cols and "slack_user_id" not in cols:
            raise ValueError(f"{path}:1: needs a column email or slack_user_id")
        for row in reader:
            line = reader.line_num

            def get(name: str, row: dict[str, str] = row) -> str | None:
                v = (row.get(cols.get(name, ""), "") or "").strip()
                return v or None

            if not get("email") and not get("slack_user_id"):
                raise ValueError(f"{path}:{line}: neither email nor slack_user_id")
            tz = get("timezone")
            if tz:
                try:
                    ZoneInfo(tz)
                except (ZoneInfoNotFoundError, ValueError):
                    raise ValueError(f"{path}:{line}: unknown time zone {tz!r}") from None
            joined = None
            if j := get("joined_at"):
                try:
                    joined = datetime.combine(date.fromisoformat(j[:10]), time(0), tzinfo=UTC)
                except ValueError:
                    raise ValueError(f"{path}:{line}: joined_at {j!r} is not a date") from None
            lang = get("language")
            records.append(
                EmployeeRecord(
                    slack_user_id=get("slack_user_id"),
                    email=get("email"),
                    name=get("name") or get("email") or "",
                    department=get("department"),
                    title=get("title"),
                    language=lang.lower()[:2] if lang else None,
                    timezone=tz,
                    joined_at=joined,
                )
            )
    return records
