"""The ``concierge`` commands of the core and the features (Typer).

The command that starts the server (``concierge run``) needs the channels, which ``bot`` never
imports: it, and the ``concierge`` entry point, live in :mod:`channels.cli`, which adds this
app's commands to its own. Helpers the feature CLIs share are in :mod:`bot.cli_common`.
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer

from bot.cli_common import ContentOpt, DbOpt, fail, migrated, run_async, settings_from
from bot.internal.cli import app as internal_app

__all__ = ["ContentOpt", "DbOpt", "app", "fail", "settings_from"]

# no name of its own: channels.cli merges these commands into the ``concierge`` app
app = typer.Typer(
    help="Concierge: a self-hosted shop assistant for web chat, Telegram and Slack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")

from bot.nlu.cli import data_app, faq_app, nlu_app  # noqa: E402

app.add_typer(nlu_app, name="nlu")
app.add_typer(data_app, name="data")
app.add_typer(faq_app, name="faq")
app.add_typer(internal_app, name="internal")
from bot.prompts.cli import prompts_app, report_app  # noqa: E402

app.add_typer(report_app, name="report")
app.add_typer(prompts_app, name="prompts")
from bot.flows.cli import flows_app  # noqa: E402
from bot.lifecycle.cli import events_app, lifecycle_app, simulate  # noqa: E402

app.add_typer(flows_app, name="flows")
app.add_typer(events_app, name="events")
app.add_typer(lifecycle_app, name="lifecycle")
app.command("simulate")(simulate)
from bot.console_cli import contacts_app, staff_app  # noqa: E402

app.add_typer(staff_app, name="staff")
app.add_typer(contacts_app, name="contacts")
docs_app = typer.Typer(help="Documentation generated from the code.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


@db_app.command("upgrade")
def db_upgrade(database_url: DbOpt = None, revision: str = "head") -> None:
    """Apply database migrations (Alembic)."""
    from bot.storage.db import Database

    settings = settings_from(None, database_url)

    async def go() -> str:
        db = Database(settings.database_url)
        async with migrated(db, revision):
            return db.safe_url

    typer.echo(f"database {run_async(go())} is at {revision}")


@app.command()
def chat(
    content: ContentOpt = None,
    database_url: DbOpt = None,
    user: Annotated[str | None, typer.Option(help="Who you are (default: your login)")] = None,
    lang: Annotated[str | None, typer.Option(help="Language hint")] = None,
) -> None:
    """Talk to the assistant in the terminal (same engine as every channel)."""
    from bot.runtime import Runtime
    from bot.types import Button, Inbound

    settings = settings_from(content, database_url, need_content=True)
    who = user or getpass.getuser()

    async def go() -> None:
        runtime = Runtime(settings, start_worker=False)
        await runtime.start()
        buttons: list[Button] = []
        typer.secho(
            "Concierge chat. Empty line or Ctrl-D quits; a number picks a button.", dim=True
        )
        try:
            while True:
                try:
                    line = await asyncio.to_thread(input, "you> ")
                except EOFError:
                    break
                line = line.strip()
                if not line:
                    break
                payload = None
                if line.isdigit() and 0 < int(line) <= len(buttons):
                    b = buttons[int(line) - 1]
                    line, payload = b.title, b.payload
                result = await runtime.engine.handle(
                    Inbound(
                        channel="cli", external_id=who, text=line, payload=payload, language=lang
                    ),
                    deliver_inline=True,
                )
                buttons = []
                for r in result.replies:
                    typer.secho(f"bot> {r.text}", fg=typer.colors.CYAN)
                    for b in r.buttons:
                        buttons.append(b)
                        typer.echo(f"     [{len(buttons)}] {b.title}")
        finally:
            await runtime.stop()

    run_async(go())


@docs_app.command("settings")
def docs_settings(
    out: Annotated[Path, typer.Option("--out", help="Where to write it")] = Path(
        "docs/settings.md"
    ),
    check: Annotated[
        bool, typer.Option("--check", help="Only compare: exit 1 when the file is out of date")
    ] = False,
) -> None:
    """Write the settings reference (every CONCIERGE_* variable) from the settings models."""
    from bot.docs import settings_reference

    text = settings_reference()
    if check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            raise fail(f"{out} is out of date: run `concierge docs settings --out {out}`", 1)
        typer.echo(f"{out} is up to date")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")
