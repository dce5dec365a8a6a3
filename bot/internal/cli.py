"""``concierge internal ...``: updates, calendar, reports, employees and audiences."""

from __future__ import annotations

import calendar as cal_mod
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from sqlalchemy import func, select

from bot.cli_common import DbOpt, fail, migrated, run_async, settings_from
from bot.internal.content import ContentError, load_file, parse_schedule
from bot.settings import SettingsError

if TYPE_CHECKING:
    from bot.internal.employees import SyncResult
    from bot.internal.service import InternalService

app = typer.Typer(help="Internal updates for employees in Slack.", no_args_is_help=True)
T = TypeVar("T")


@dataclass(frozen=True)
class SlackSide:
    """What these commands need of the Slack channel: Block Kit and channel audiences
    (``attach``), the directory sync. ``bot`` does not import channels: the ``concierge``
    entry point (:mod:`channels.cli`) sets :data:`slack_side`."""

    attach: Callable[[InternalService], None]
    sync_employees: Callable[[InternalService], Awaitable[SyncResult]]
    declare: Callable[[InternalService], None]  # the channel employees are on, what it can do


slack_side: SlackSide | None = None

ContentOpt = Annotated[
    Path | None,
    typer.Option("--content", help="Content folder with updates/ and flows/", show_default=False),
]


def _run(content: Path | None, database_url: str | None, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(service)`` against a migrated database, without starting the server parts."""
    from bot.internal import service_of
    from bot.runtime import Runtime

    settings = settings_from(content, database_url)

    async def go() -> T:
        try:
            runtime = Runtime(settings, start_worker=False)
            svc = service_of(runtime)
        except (SettingsError, LookupError) as e:
            raise fail(str(e)) from None
        if slack_side is not None:
            slack_side.declare(svc)  # messages queued here go out from the server
            if settings.slack_bot_token:
                slack_side.attach(svc)  # Block Kit and channel audiences, as the server has them
        async with migrated(runtime.db):
            return await work(svc)

    return run_async(go())


def _now(svc: Any) -> datetime:
    now: datetime = svc.runtime.clock.now()
    return now


async def _load_target(svc: Any, target: str) -> str:
    """A file path (loaded now) or the key of a loaded update -> the key."""
    path = Path(target)
    exists = path.is_file()  # noqa: ASYNC240 (a command line, nothing else waits)
    if path.suffix in (".md", ".yml", ".yaml") or exists:
        if not exists:
            raise fail(f"no such file: {path}")
        try:
            spec = load_file(path, svc.runtime.settings.default_language)
        except ContentError as e:
            raise fail(str(e)) from None
        async with svc.db.session() as s:
            await svc.upsert_spec(s, spec, _now(svc))
        return spec.key
    await svc.sync_files()
    return target


@app.command("list")
def list_updates(content: ContentOpt = None, database_url: DbOpt = None) -> None:
    """Updates with their schedule, audience and delivery counts; file errors first."""
    from bot.internal.models import Update, UpdateDelivery

    async def work(svc: Any) -> None:
        _, errors = await svc.sync_files()
        for e in errors:
            typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        async with svc.db.session() as s:
            updates = list((await s.execute(select(Update).order_by(Update.id))).scalars())
            counts: dict[int, dict[str, int]] = {}
            for uid, status, n in (
                await s.execute(
                    select(UpdateDelivery.update_id, UpdateDelivery.status, func.count()).group_by(
                        UpdateDelivery.update_id, UpdateDelivery.status
                    )
                )
            ).all():
                counts.setdefault(uid, {})[status] = n
        if not updates:
            typer.echo("no updates (write updates/*.md or flows/internal/*.yml)")
        for u in updates:
            when = u.scheduled_for.replace("T", " ") if u.scheduled_for else "-"
            if u.scheduled_for:
                when += f" {u.schedule_tz}" if u.schedule_tz else " (local)"
            c = counts.get(u.id, {})
            figures = ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "no deliveries"
            flags = " important" if u.important else ""
            typer.echo(
                f"{u.key:<32} {u.status:<9} {when:<24} {u.audience} [{u.kind}, {u.goal}, "
                f"{u.priority}{flags}]  {figures}"
            )
        if errors:
            raise typer.Exit(1)

    _run(content, database_url, work)


@app.command()
def schedule(
    target: Annotated[str, typer.Argument(help="An update file or the key of a loaded update")],
    at: Annotated[str, typer.Option("--at", help="'YYYY-MM-DD HH:MM' (recipient's local time)")],
    tz: Annotated[
        str | None, typer.Option("--tz", help="A fixed time zone instead of each recipient's")
    ] = None,
    content: ContentOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Schedule an update for a local time."""
    try:
        when, zone = parse_schedule(f"{at} {tz}" if tz else at)
    except ValueError as e:
        raise fail(str(e)) from None

    async def work(svc: Any) -> None:
        key = await _load_target(svc, target)
        try:
            u = await svc.schedule(key, when, zone)
        except (LookupError, ValueError) as e:
            raise fail(str(e).strip("'\"")) from None
        where = zone or "each recipient's local time"
        typer.echo(f"scheduled {u.key} for {when.replace('T', ' ')} ({where}) to {u.audience}")

    _run(content, database_url, work)


@app.command()
def send(
    target: Annotated[
        str | None, typer.Argument(help="An update file or the key of a loaded update")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title of a quick update (with --text)")] = None,
    text: Annotated[str | None, typer.Option(help="Body of a quick update (Markdown)")] = None,
    audience: Annotated[
        str | None, typer.Option(help="Audience of a quick update, e.g. department:support")
    ] = None,
    goal: Annotated[str, typer.Option(help="Goal of a quick update")] = "engagement",
    content: ContentOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Send an update now (still only in working hours, never on a holiday, within the caps).

    The running server (``concierge run``) delivers the queued messages.
    """
    from bot.internal.content import parse_update

    if target is None and not (title and text and audience):
        raise fail("give an update file or key, or --title, --text and --audience")

    async def work(svc: Any) -> None:
        if target is not None:
            key = await _load_target(svc, target)
        else:
            now = _now(svc)
            key = f"cli-{now:%Y%m%d-%H%M%S}"
            data = {"id": key, "title": title, "body": text, "audience": audience, "goal": goal}
            try:
                spec = parse_update(Path("--text"), data, {})
            except ContentError as e:
                raise fail(e.problem) from None
            spec.source = "cli"
            async with svc.db.session() as s:
                await svc.upsert_spec(s, spec, now)
        try:
            await svc.schedule(key, None)
        except (LookupError, ValueError) as e:
            raise fail(str(e).strip("'\"")) from None
        stats = await svc.run_once()
        typer.echo(
            f"{key}: {stats.sent + stats.channel_posts} queued, {stats.held} held for the "
            f"digest, {stats.deferred} deferred (holiday or outside working hours), "
            f"{stats.skips} skipped"
        )
        for note in stats.notes:
            typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)

    _run(content, database_url, work)


@app.command()
def cancel(key: str, content: ContentOpt = None, database_url: DbOpt = None) -> None:
    """Cancel an update: whatever was not sent yet stays unsent."""

    async def work(svc: Any) -> None:
        try:
            n = await svc.cancel(key)
        except LookupError as e:
            raise fail(str(e).strip("'\"")) from None
        typer.echo(f"cancelled {key}: {n} pending deliveries dropped")

    _run(content, database_url, work)


@app.command("calendar")
def show_calendar(
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month)")] = None,
    content: ContentOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Print a month: company holidays (H), launches (L), events (E), scheduled updates (*)."""
    from bot.internal.models import Update

    async def work(svc: Any) -> None:
        try:
            cal = svc.calendar
        except ContentError as e:
            raise fail(str(e)) from None
        today = _now(svc).astimezone(cal.tz).date()
        if month:
            try:
                y, m = (int(p) for p in month.split("-"))
                first = date(y, m, 1)
            except ValueError:
                raise fail(f"--month {month!r}: use YYYY-MM") from None
        else:
            first = today.replace(day=1)
        await svc.sync_files()
        async with svc.db.session() as s:
            updates = list(
                (
                    await s.execute(
                        select(Update).where(
                            Update.scheduled_for.is_not(None), Update.status != "cancelled"
                        )
                    )
                ).scalars()
            )
        planned: dict[date, list[Any]] = {}
        for u in updates:
            d = datetime.fromisoformat(u.scheduled_for).date()
            if (d.year, d.month) == (first.year, first.month):
                planned.setdefault(d, []).append(u)
        typer.echo(render_month(cal, first.year, first.month, planned))

    _run(content, database_url, work)


def render_month(cal: Any, year: int, month: int, planned: dict[date, list[Any]]) -> str:
    """The month as a grid (``  6H`` a holiday, ``12*`` an update) and a list below it."""
    lines = [f"{cal_mod.month_name[month]} {year}".center(35), " Mo   Tu   We   Th   Fr   Sa   Su"]
    for week in cal_mod.Calendar().monthdatescalendar(year, month):
        cells = []
        for d in week:
            if d.month != month:
                cells.append("    ")
                continue
            mark = ""
            kinds = {c.kind for c in cal.on(d)}
            mark += "H" if "holiday" in kinds else ""
            mark += "L" if "launch" in kinds else ""
            mark += "E" if "event" in kinds else ""
            mark += "*" if d in planned else ""
            if not mark and d.weekday() not in cal.working_days:
                mark = "-"
            cells.append(f"{d.day:>2}{mark[:2]:<2}")
        lines.append(" ".join(cells).rstrip())
    lines.append("")
    lines.append(
        f"H holiday  L launch  E event  * update  - day off   "
        f"(working hours {cal.hours[0]:%H:%M}-{cal.hours[1]:%H:%M}, {cal.timezone})"
    )
    days = sorted({*(d for c in cal.dates for d in _days_in(c, year, month)), *planned})
    for d in days:
        for c in cal.on(d):
            if c.start == d or d.day == 1:
                span = f" to {c.end}" if c.end != c.start else ""
                lines.append(f"{d} {c.kind:<8} {c.title}{span}")
        for u in planned.get(d, []):
            t = u.scheduled_for[11:16]
            zone = u.schedule_tz or "local"
            holiday = cal.holiday(d) is not None
            note = "  (holiday: deferred to the next working day)" if holiday else ""
            lines.append(f"{d} update   {t} {zone} {u.key} -> {u.audience}{note}")
    return "\n".join(lines)


def _days_in(c: Any, year: int, month: int) -> list[date]:
    days = (c.start + timedelta(days=n) for n in range((c.end - c.start).days + 1))
    return [d for d in days if (d.year, d.month) == (year, month)]


@app.command()
def report(
    key: Annotated[str | None, typer.Argument(help="One update (default: all)")] = None,
    by: Annotated[str, typer.Option(help="update | goal | department")] = "update",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    team: Annotated[
        bool, typer.Option("--team", help="The support & sales digest of the last 7 days")
    ] = False,
    content: ContentOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Reach and engagement per update, by goal or by department; pulse results."""
    from dataclasses import asdict

    from bot.internal.models import Update
    from bot.internal.render import team_digest_text
    from bot.internal.reports import (
        READ_PROXY_NOTE,
        by_goal,
        pulse_results_for,
        reports,
        team_digest_data,
    )

    if by not in ("update", "goal", "department"):
        raise fail("--by: update, goal or department")

    async def work(svc: Any) -> None:
        now = _now(svc)
        if team:
            async with svc.db.session() as s:
                data = await team_digest_data(
                    s,
                    since=now - timedelta(days=7),
                    until=now,
                    runtime=svc.runtime,
                    channel=svc.channel,
                )
            data["start"] = str((now - timedelta(days=7)).date())
            data["end"] = str(now.date())
            lang = svc.runtime.settings.default_language
            typer.echo(
                json.dumps(data, indent=2) if as_json else team_digest_text(data, svc.texts, lang)
            )
            return
        async with svc.db.session() as s:
            reps = await reports(s, key)
            if key and not reps:
                raise fail(f"no update {key!r}")
            pulses = {}
            for r in reps:
                if r.kind == "pulse":
                    uid = (
                        await s.execute(select(Update.id).where(Update.key == r.key))
                    ).scalar_one()
                    pulses[r.key] = await pulse_results_for(s, uid)
        if as_json:
            out: dict[str, Any] = {
                "note": READ_PROXY_NOTE,
                "updates": [
                    {**asdict(r), "reached": r.reached, "engagement_rate": r.engagement_rate}
                    for r in reps
                ],
                "goals": by_goal(reps),
                "pulses": {k: asdict(v) for k, v in pulses.items() if v is not None},
            }
            typer.echo(json.dumps(out, indent=2, default=str))
            return
        if by == "goal":
            for goal, g in by_goal(reps).items():
                rate = _pct(g["engagement_rate"])
                avg = f"{g['rating_avg']:.1f}" if g["rating_avg"] is not None else "-"
                typer.echo(
                    f"{goal:<22} updates {g['updates']:>3}  reached {g['reached']:>5}  "
                    f"engaged {g['engaged']:>5} ({rate})  usefulness {avg}"
                )
        for r in reps if by != "goal" else []:
            typer.echo(f"{r.key}: {r.title}  [{r.kind}, goal {r.goal}, {r.status}]")
            typer.echo(f"  audience {r.audience}: {r.planned} planned")
            typer.echo(
                f"  reached {r.reached} (sent {r.sent}, in a digest {r.bundled}), "
                f"delivered {r.delivered}, failed {r.failed}, held {r.held}, "
                f"skipped {r.skipped}, deferred {r.deferred}"
            )
            avg = f"{r.rating_avg:.1f} ({r.ratings})" if r.rating_avg is not None else "-"
            typer.echo(
                f"  engaged {r.engaged} ({_pct(r.engagement_rate)}): reacted {r.reacted}, "
                f"got it {r.got_it}, tell me more {r.more}, opened a link {r.opened_link}, "
                f"usefulness {avg}"
            )
            for reason, n in sorted(r.skip_reasons.items()):
                typer.echo(f"  skipped: {reason} x{n}")
            if by == "department":
                for dept, c in r.by_department.items():
                    typer.echo(
                        f"    {dept:<24} planned {c.get('planned', 0):>4}  "
                        f"reached {c.get('reached', 0):>4}  engaged {c.get('engaged', 0):>4}"
                    )
            p = pulses.get(r.key)
            if p is not None:
                typer.echo(_pulse_text(p))
        typer.secho(f"note: {READ_PROXY_NOTE}", dim=True)

    _run(content, database_url, work)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _pulse_text(p: Any) -> str:
    lines = [
        f"  pulse: {p.question}  ({p.responses} answers, "
        f"{'anonymous' if p.anonymous else 'named'}, groups of at least {p.min_group_size})"
    ]
    if p.overall is None:
        lines.append(f"    results hidden: fewer than {p.min_group_size} answers")
        return "\n".join(lines)
    lines.append("    all: " + ", ".join(f"{o}: {n}" for o, n in p.overall.items()))
    for g, dist in p.groups.items():
        lines.append(f"    {g}: " + ", ".join(f"{o}: {n}" for o, n in dist.items()))
    if p.hidden_groups:
        lines.append(f"    {p.hidden_groups} {p.group_by} group(s) hidden (too few answers)")
    return "\n".join(lines)


@app.command()
def sync(
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Import employees from a CSV file")
    ] = None,
    slack: Annotated[bool, typer.Option(help="Sync from Slack users.list")] = True,
    content: ContentOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Sync employees from Slack (profile fields mapped in settings) and/or a CSV file."""
    from bot.internal.employees import read_employee_csv, upsert_employees

    async def work(svc: Any) -> None:
        now = _now(svc)
        if csv_file is not None:
            if not csv_file.exists():
                raise fail(f"no such file: {csv_file}")
            try:
                records = read_employee_csv(csv_file)
            except ValueError as e:
                raise fail(str(e)) from None
            async with svc.db.session() as s:
                res = await upsert_employees(s, records, now=now, source="csv")
            typer.echo(f"csv {csv_file}: {res}")
        if (slack and csv_file is None) or (slack and svc.runtime.settings.slack_bot_token):
            if not svc.runtime.settings.slack_bot_token:
                raise fail("CONCIERGE_SLACK_BOT_TOKEN is not set (or use --csv FILE --no-slack)")
            if slack_side is None:
                raise fail("the Slack channel is not installed with this command line")
            res = await slack_side.sync_employees(svc)
            typer.echo(f"slack: {res}")
            for problem in res.errors:
                typer.secho(f"warning: {problem}", fg=typer.colors.YELLOW, err=True)

    _run(content, database_url, work)


@app.command()
def audience(
    spec: Annotated[
        str, typer.Argument(help="e.g. 'department:support', 'new_hires', or a saved name")
    ],
    save: Annotated[str | None, typer.Option(help="Save the audience under this name")] = None,
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", help="Save members from a CSV file (with --save)"),
    ] = None,
    show: Annotated[int, typer.Option(help="How many names to list")] = 20,
    content: ContentOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Preview who an audience reaches (and optionally save it)."""
    from bot.internal.audiences import AudienceError, parse_audience, read_member_csv
    from bot.internal.models import Audience

    async def work(svc: Any) -> None:
        now = _now(svc)
        expr = spec
        if ":" not in spec and spec not in ("everyone", "all", "new_hires") and not csv_file:
            expr = f"audience:{spec}"
        if save:
            members: list[str] = []
            if csv_file is not None:
                try:
                    members = sorted(read_member_csv(csv_file))
                except (OSError, AudienceError) as e:
                    raise fail(str(e)) from None
            else:
                try:
                    parse_audience(spec)
                except AudienceError as e:
                    raise fail(str(e)) from None
            async with svc.db.session() as s:
                row = (
                    await s.execute(select(Audience).where(Audience.name == save))
                ).scalar_one_or_none()
                if row is None:
                    row = Audience(name=save, created_at=now)
                    s.add(row)
                row.spec = None if csv_file else spec
                row.members = members
                row.updated_at = now
            expr = f"audience:{save}"
        try:
            res = await svc.preview(expr, now)
        except AudienceError as e:
            raise fail(str(e)) from None
        typer.echo(f"{expr} reaches {res.count} employee(s)")
        for dept, n in res.by_department().items():
            typer.echo(f"  {dept}: {n}")
        for emp in res.employees[:show]:
            who = emp.email or emp.slack_user_id
            typer.echo(f"  - {emp.name} <{who}> {emp.department or ''}")
        if res.count > show:
            typer.echo(f"  ... and {res.count - show} more")
        for note in res.notes:
            typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)

    _run(content, database_url, work)


@app.command()
def run_once(content: ContentOpt = None, database_url: DbOpt = None) -> None:
    """One scheduler round now (what the server does every 30 seconds)."""

    async def work(svc: Any) -> None:
        await svc.sync_files()
        st = await svc.run_once()
        typer.echo(
            f"expanded {st.expanded}, sent {st.sent}, channel posts {st.channel_posts}, "
            f"held {st.held}, deferred {st.deferred}, skipped {st.skips}, digests {st.digests}"
        )

    _run(content, database_url, work)
