"""``concierge events import``, ``concierge simulate``, ``concierge lifecycle ...``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli_common import ContentOpt, DbOpt, fail, migrated, run_async, settings_from

if TYPE_CHECKING:
    from bot.lifecycle.schema import EventIn

events_app = typer.Typer(
    help="Shop events (the events API's twin for files).", no_args_is_help=True
)
lifecycle_app = typer.Typer(help="Lifecycle stages: sweep, link tokens.", no_args_is_help=True)


def _events(path: Path, latest: datetime) -> Iterator[tuple[int, EventIn | None, list[str]]]:
    """Each line that is not blank: its number, its event (None if bad: not an event, or it
    occurred after ``latest``) and its problems."""
    from bot.lifecycle.schema import parse_one

    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                yield n, None, [f"{path}:{n}: not JSON: {e.msg} (column {e.colno})"]
                continue
            if not isinstance(raw, dict):
                yield n, None, [f"{path}:{n}: an event is a JSON object"]
                continue
            ev, errs = parse_one(raw)
            if ev is not None and ev.occurred_at > latest:
                yield n, None, [f"{path}:{n}: occurred_at: is in the future"]
                continue
            yield n, ev, [f"{path}:{n}: {e['field']}: {e['message']}" for e in errs]


def _read(path: Path, latest: datetime) -> tuple[int, list[str]]:
    """First pass: count the events and find every bad line (nothing is imported yet)."""
    count, errors = 0, []
    for _, ev, problems in _events(path, latest):
        if ev is None:
            errors += problems
        else:
            count += 1
    return count, errors


def _batches(path: Path, latest: datetime, size: int) -> Iterator[list[EventIn]]:
    """Second pass: the good events, ``size`` at a time (the bad lines the first pass named
    are left out)."""
    batch: list[EventIn] = []
    for _, ev, _ in _events(path, latest):
        if ev is None:
            continue
        batch.append(ev)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@events_app.command("import")
def import_events(
    file: Annotated[Path, typer.Argument(help="JSON Lines: one event a line, as the API takes")],
    content: ContentOpt = None,
    database_url: DbOpt = None,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Events per transaction")] = 500,
    flows: Annotated[
        bool,
        typer.Option(
            "--flows/--no-flows",
            help="Start the flows events trigger (default off: a backfill sends nothing)",
        ),
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option(help="Import the valid lines even when some are bad")
    ] = False,
) -> None:
    """Import shop events from a JSONL file (backfills). Idempotent by event id: importing the
    same file twice stores every event once."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from bot.lifecycle.service import service_of
    from bot.runtime import Runtime

    if not file.is_file():
        raise fail(f"{file} is not a file")
    settings = settings_from(content, database_url)
    runtime = Runtime(settings, start_worker=False)
    svc = service_of(runtime)
    latest = runtime.clock.now() + svc.settings.future_tolerance
    total, errors = _read(file, latest)
    for e in errors[:20]:
        typer.secho(e, fg=typer.colors.RED, err=True)
    if len(errors) > 20:
        typer.secho(f"... and {len(errors) - 20} more", fg=typer.colors.RED, err=True)
    if errors and not skip_invalid:
        raise fail(
            f"{len(errors)} bad line(s): nothing imported (--skip-invalid imports the rest)", 1
        )

    async def go() -> tuple[int, int, int]:
        accepted = dup = moved = 0
        async with migrated(runtime.db):
            with Progress(
                TextColumn("[bold]importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>8} events/s"),
                TimeRemainingColumn(),
            ) as progress:
                task = progress.add_task("events", total=total, rate="")
                started = time.perf_counter()
                done = 0
                for part in _batches(file, latest, batch):
                    r = await svc.ingest(part, source="import", trigger_flows=flows)
                    accepted += len(r.accepted)
                    dup += len(r.duplicates)
                    moved += r.transitions
                    done += len(part)
                    rate = done / max(time.perf_counter() - started, 1e-9)
                    progress.update(task, advance=len(part), rate=f"{rate:,.0f}")
        return accepted, dup, moved

    accepted, dup, moved = run_async(go())
    typer.secho(
        f"{accepted} events imported, {dup} already known, {moved} stage changes",
        fg=typer.colors.GREEN,
    )


def simulate(
    user: Annotated[str, typer.Option("--user", help="The shop's user id to follow")],
    events: Annotated[Path, typer.Option("--events", help="JSONL file of events")],
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Days to simulate")] = 30,
    content: ContentOpt = None,
    channel: Annotated[
        str, typer.Option(help="The channel the person can be written to: web, telegram, slack")
    ] = "web",
) -> None:
    """Print one person's timeline: events, stage changes, flows, prompts (scheduled, sent,
    deferred, skipped with the reason) and the messages they would get in their language, on a
    throw-away database with a simulated clock. Nothing is sent."""
    from rich.console import Console
    from rich.table import Table

    from bot.lifecycle.simulate import SimulationError, format_timeline, read_events
    from bot.lifecycle.simulate import simulate as play

    settings = settings_from(content, None, need_content=True)
    try:
        evs = read_events(events, user)
    except SimulationError as e:
        raise fail(str(e)) from None
    if not evs:
        typer.secho(f"note: no events of user {user!r} in {events}", fg=typer.colors.YELLOW)
    if channel not in ("web", "telegram", "slack"):
        raise fail(f"--channel {channel!r}: use web, telegram or slack")
    timeline, figures = asyncio.run(play(settings, user, evs, days, channel=channel))
    table = Table(title=f"{user}: {days} days", show_lines=False)
    table.add_column("when", no_wrap=True)
    table.add_column("what", no_wrap=True)
    table.add_column("detail")
    colors = {
        "event": "cyan",
        "stage": "magenta",
        "flow": "yellow",
        "prompt": "blue",
        "message": "green",
    }
    table.caption = f"times in {settings.default_timezone}"
    for when, kind, text in format_timeline(timeline, settings.default_timezone):
        table.add_row(when, f"[{colors.get(kind, 'white')}]{kind}[/]", text)
    console = Console()
    console.print(table)
    console.print(
        f"stage [bold]{figures['stage']}[/], purchases {figures['purchases']}, "
        f"spent {figures['monetary']}, RFM {figures['rfm']}, "
        f"segments: {', '.join(figures['segments']) or 'none'}"
    )


@lifecycle_app.command("sweep")
def sweep(content: ContentOpt = None, database_url: DbOpt = None) -> None:
    """Apply the inactivity rules now (the server does this every hour)."""
    from bot.lifecycle.service import service_of
    from bot.runtime import Runtime

    settings = settings_from(content, database_url)

    async def go() -> dict[str, int]:
        runtime = Runtime(settings, start_worker=False)
        async with migrated(runtime.db):
            return await service_of(runtime).sweep()

    started = time.perf_counter()
    result = run_async(go())
    for rule, n in result.items():
        typer.echo(f"{n:>9}  {rule}")
    typer.echo(f"done in {time.perf_counter() - started:.2f} s")


@lifecycle_app.command("link-token")
def link_token(
    user_id: Annotated[str, typer.Argument(help="The shop's user id")],
    days: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=3650,
            help="Valid for this many days (default: CONCIERGE_LIFECYCLE_LINK_TTL_DAYS, 30)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """A signed token (and Telegram deep link) that connects a chat to USER_ID."""
    from bot.lifecycle.links import deep_link, make_start_token

    settings = settings_from(None, None)
    lifecycle = settings.lifecycle
    secret = lifecycle.link_secret or settings.events_secret or settings.web_identity_secret
    if not secret:
        raise fail("set CONCIERGE_EVENTS_SECRET (or CONCIERGE_LIFECYCLE_LINK_SECRET) first")
    try:
        token = make_start_token(secret, user_id, ttl_days=days or lifecycle.link_ttl_days)
    except ValueError as e:
        raise fail(str(e)) from None
    typer.echo(token)
    if settings.telegram_bot_username:
        typer.echo(deep_link(settings.telegram_bot_username, token))
