"""Audiences: who an update reaches.

An audience is a comma-separated union of selectors; a selector with a leading ``-`` removes
people again (``everyone, -department:sales``):

- ``everyone``
- ``department:<name>``, ``title:<text>`` (contains), ``language:<code>``
- ``channel:<Slack channel id>`` (members, asked from Slack), ``group:<user group handle or id>``
- ``new_hires`` (joined in the last N days, setting) or ``joined_within:<days>d``
- ``topic:<topic>`` (subscribers), ``user:<Slack user id or e-mail>``
- ``audience:<saved name>`` (saved with ``concierge internal audience ... --save``)
- ``csv:<file>`` (a column ``slack_user_id``, ``email`` or ``user``; relative to the content folder)
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.internal.models import Audience, Employee

KINDS = {
    "everyone",
    "department",
    "title",
    "language",
    "channel",
    "group",
    "new_hires",
    "joined_within",
    "topic",
    "user",
    "audience",
    "csv",
}
ALIASES = {"all": "everyone", "dept": "department", "usergroup": "group", "lang": "language"}


class AudienceError(ValueError):
    """An audience expression that cannot be understood, or resolved."""


class Directory(Protocol):
    """Membership the platform knows and the database does not (implemented in ``channels``)."""

    async def channel_members(self, channel: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Selector:
    kind: str
    value: str = ""
    exclude: bool = False

    def __str__(self) -> str:
        s = self.kind if not self.value else f"{self.kind}:{self.value}"
        return f"-{s}" if self.exclude else s


def parse_audience(spec: str) -> list[Selector]:
    parts = [p.strip() for p in spec.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise AudienceError("empty audience (e.g. everyone, department:support)")
    out = []
    for part in parts:
        exclude = part.startswith("-")
        part = part.lstrip("-").strip()
        kind, _, value = part.partition(":")
        kind = ALIASES.get(kind.strip().lower(), kind.strip().lower())
        value = value.strip()
        if kind not in KINDS:
            raise AudienceError(
                f"unknown audience {part!r}; use {', '.join(sorted(KINDS))} "
                "(e.g. department:support)"
            )
        if kind in ("everyone", "new_hires"):
            if value:
                raise AudienceError(f"{kind} takes no value")
        elif not value:
            raise AudienceError(f"{kind}: needs a value, e.g. {kind}:something")
        if kind == "joined_within":
            try:
                int(value.rstrip("d"))
            except ValueError:
                raise AudienceError(
                    f"joined_within:{value}: use a number of days, e.g. 30d"
                ) from None
        out.append(Selector(kind, value, exclude))
    if all(s.exclude for s in out):
        raise AudienceError("an audience needs at least one selector that adds people")
    return out


@dataclass
class Resolved:
    employees: list[Employee]
    notes: list[str] = field(default_factory=list)  # what could not be resolved, and why

    @property
    def count(self) -> int:
        return len(self.employees)

    def by_department(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.employees:
            k = e.department or "(no department)"
            out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


async def fetch_external(
    selectors: Iterable[Selector], directory: Directory | None
) -> tuple[dict[Selector, set[str]], list[str]]:
    """Ask the platform for channel members (outside any database transaction)."""
    found: dict[Selector, set[str]] = {}
    notes: list[str] = []
    for sel in selectors:
        if sel.kind != "channel":
            continue
        if directory is None:
            notes.append(f"{sel}: Slack is not configured, channel members unknown")
            continue
        try:
            found[sel] = set(await directory.channel_members(sel.value.lstrip("#")))
        except Exception as e:
            notes.append(f"{sel}: {e}")
    return found, notes


async def resolve(
    session: AsyncSession,
    spec: str,
    *,
    now: datetime,
    new_hire_days: int = 30,
    content_dir: Path | None = None,
    external: dict[Selector, set[str]] | None = None,
    _depth: int = 0,
) -> Resolved:
    """The active employees an audience reaches (sorted by name)."""
    selectors = parse_audience(spec)
    external = external or {}
    notes: list[str] = []
    include: dict[int, Employee] = {}
    exclude: set[int] = set()
    everyone: list[Employee] | None = None

    async def all_active() -> list[Employee]:
        nonlocal everyone
        if everyone is None:
            everyone = list(
                (await session.execute(select(Employee).where(Employee.active))).scalars()
            )
        return everyone

    for sel in selectors:
        matched: list[Employee] = []
        people = await all_active()
        v = sel.value.casefold()
        if sel.kind == "everyone":
            matched = people
        elif sel.kind == "department":
            matched = [e for e in people if (e.department or "").casefold() == v]
        elif sel.kind == "title":
            matched = [e for e in people if v in (e.title or "").casefold()]
        elif sel.kind == "language":
            matched = [e for e in people if (e.language or "").casefold().startswith(v)]
        elif sel.kind == "group":
            matched = [e for e in people if v in {g.casefold() for g in e.groups or []}]
        elif sel.kind in ("new_hires", "joined_within"):
            days = new_hire_days if sel.kind == "new_hires" else int(sel.value.rstrip("d"))
            since = now - timedelta(days=days)
            matched = [e for e in people if e.joined_at is not None and e.joined_at >= since]
        elif sel.kind == "topic":
            matched = [e for e in people if v in (e.subscriptions or [])]
        elif sel.kind == "user":
            matched = [e for e in people if v in (_ident(e))]
        elif sel.kind == "channel":
            ids = external.get(sel)
            if ids is None:
                ids = external.get(Selector(sel.kind, sel.value, not sel.exclude), set())
            matched = [e for e in people if e.slack_user_id in ids]
        elif sel.kind == "csv":
            try:
                keys = read_member_csv(_path(sel.value, content_dir))
            except (OSError, AudienceError) as e:
                raise AudienceError(f"{sel}: {e}") from None
            matched = [e for e in people if _ident(e) & keys]
        elif sel.kind == "audience":
            saved = (
                await session.execute(
                    select(Audience).where(func.lower(Audience.name) == sel.value.lower())
                )
            ).scalar_one_or_none()
            if saved is None:
                raise AudienceError(f"no saved audience named {sel.value!r}")
            keys = {m.casefold() for m in saved.members or []}
            matched = [e for e in people if _ident(e) & keys]
            if saved.spec and _depth < 5:
                inner = await resolve(
                    session,
                    saved.spec,
                    now=now,
                    new_hire_days=new_hire_days,
                    content_dir=content_dir,
                    external=external,
                    _depth=_depth + 1,
                )
                matched = [*matched, *inner.employees]
                notes.extend(inner.notes)
        if sel.exclude:
            exclude.update(e.id for e in matched)
        else:
            include.update((e.id, e) for e in matched)
    people_out = sorted(
        (e for i, e in include.items() if i not in exclude), key=lambda e: (e.name, e.id)
    )
    return Resolved(people_out, notes)


def channel_selectors(spec: str) -> list[Selector]:
    return [s for s in parse_audience(spec) if s.kind == "channel"]


def _ident(e: Employee) -> set[str]:
    return {x.casefold() for x in (e.slack_user_id, e.email) if x}


def _path(value: str, content_dir: Path | None) -> Path:
    p = Path(value)
    if not p.is_absolute() and content_dir is not None:
        p = content_dir / p
    return p


def read_member_csv(path: Path) -> set[str]:
    """Slack user ids or e-mail addresses from a CSV file (a header row names the column)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = [c for c in (reader.fieldnames or []) if c]
        lower = {c.strip().lower(): c for c in cols}
        col = next(
            (lower[c] for c in ("slack_user_id", "slack_id", "user", "email") if c in lower),
            None,
        )
        if col is None:
            raise AudienceError(
                f"{path}: needs a column slack_user_id, email or user (found: {', '.join(cols)})"
            )
        return {row[col].strip().casefold() for row in reader if row.get(col, "").strip()}
