"""``concierge report prompts`` and ``concierge prompts validate|run``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from bot.cli_common import ContentOpt, DbOpt, fail, migrated, run_async, settings_from
from bot.content.durations import parse_duration

report_app = typer.Typer(help="Reports.", no_args_is_help=True)
prompts_app = typer.Typer(help="Proactive prompts (flows/prompts.yml).", no_args_is_help=True)


@report_app.command("prompts")
def report_prompts(
    content: Annotated[
        Path | None,
        typer.Option(
            "--content",
            help="Content folder whose flows/prompts.yml lists the prompts: those with no "
            "activity yet are shown too",
            show_default=False,
        ),
    ] = None,
    database_url: DbOpt = None,
    prompt: Annotated[str | None, typer.Option(help="Only this prompt id")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only the last DURATION, e.g. 30d (default: all)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text")] = False,
) -> None:
    """Sends, skips by reason, conversions and lift against the holdout (95% CI)."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from bot.clock import utcnow
    from bot.prompts.report import PromptFigures, format_report, prompt_report
    from bot.storage.db import Database

    window: timedelta | None = None
    if since is not None:
        try:
            window = parse_duration(since)
        except ValueError as e:
            raise fail(str(e)) from None
    settings = settings_from(content, database_url)
    defined: list[str] = []
    if content is not None:
        from bot.content.loader import ContentError
        from bot.prompts.definitions import load_prompts
        from bot.settings import SettingsError

        try:
            path = settings.prompts.file or settings.flows_dir / "prompts.yml"
            if not path.is_file():
                raise fail(f"{path} does not exist (the prompts of --content {content})")
            defined = list(load_prompts(path).prompts)
        except (SettingsError, ContentError) as e:
            raise fail(str(e)) from None
        if prompt is not None and prompt not in defined:
            raise fail(f"no prompt {prompt!r} in {path} ({', '.join(defined) or 'none'})")

    async def go() -> list[dict[str, object]] | str:
        db = Database(settings.database_url)
        try:
            await db.check()
            async with db.session() as s:
                figures = await prompt_report(
                    s, since=utcnow() - window if window else None, prompt=prompt
                )
        finally:
            await db.dispose()
        seen = {f.prompt_id for f in figures}
        figures += [
            PromptFigures(pid)
            for pid in defined
            if pid not in seen and (prompt is None or pid == prompt)
        ]
        figures.sort(key=lambda f: f.prompt_id)
        return [f.as_dict() for f in figures] if as_json else format_report(figures)

    try:
        result = run_async(go())
    except SQLAlchemyError as e:  # e.g. a database never migrated: no prompt tables
        raise fail(
            f"cannot read the prompts of {settings.database_url}: {type(e).__name__} "
            f"({str(e.orig if isinstance(e, DBAPIError) else e).splitlines()[0]}); "
            "run `concierge db upgrade` on it first"
        ) from None
    typer.echo(
        json.dumps(result, indent=2) if as_json else str(result), nl=not isinstance(result, str)
    )


@prompts_app.command("validate")
def validate(content: ContentOpt = None) -> None:
    """Check flows/prompts.yml: structure, triggers, texts in every language (file:line)."""
    from bot.content.loader import ContentError
    from bot.prompts.definitions import (
        check_responses,
        check_stages,
        load_prompts,
    )
    from bot.responses import Responses

    settings = settings_from(content, None)
    config = settings.prompts
    path = config.file or settings.flows_dir / "prompts.yml"
    try:
        book = load_prompts(path)
    except ContentError as e:
        raise fail(str(e), 1) from None
    responses = Responses.from_folder(settings.nlu_data_dir, settings.default_language)
    problems = check_responses(book, responses, settings.languages)
    problems += check_stages(book, path.parent / "lifecycle.yml")
    for p in problems:
        typer.secho(p, fg=typer.colors.RED, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{path}: {len(book.prompts)} prompts OK")


@prompts_app.command("run")
def run_once(
    content: ContentOpt = None,
    database_url: DbOpt = None,
    sweep: Annotated[bool, typer.Option(help="Run the sweeps first")] = True,
) -> None:
    """One scheduler round now: sweeps, then every due prompt (cron jobs, catching up)."""
    from bot.prompts import service_of
    from bot.runtime import Runtime

    settings = settings_from(content, database_url)

    async def go() -> str:
        rt = Runtime(settings, start_worker=False)
        svc = service_of(rt)
        svc.config.scheduler = False
        async with migrated(rt.db):
            stats = await svc.run_once(sweep=sweep)
        skipped = ", ".join(f"{k} {v}" for k, v in stats.skipped.most_common()) or "none"
        return (
            f"scheduled {stats.scheduled}, sent {stats.sent}, deferred {stats.deferred}, "
            f"held out {stats.held}, cancelled {stats.cancelled}, skipped: {skipped}"
        )

    try:
        typer.echo(run_async(go()))
    except LookupError as e:
        raise fail(str(e)) from None
