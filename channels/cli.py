"""The ``concierge`` entry point: the core's and the features' commands (:mod:`bot.cli`) and
``concierge run``, which starts the server with every channel (it may import both)."""

from __future__ import annotations

import gc
import sys
from typing import Annotated

import typer

from bot.cli import app as bot_app
from bot.cli_common import ContentOpt, DbOpt, fail, migrated, run_async, settings_from
from bot.internal import cli as internal_cli
from bot.storage.db import DatabaseError
from channels import slack_internal

app = typer.Typer(
    name="concierge",
    help="Concierge: a self-hosted shop assistant for web chat, Telegram and Slack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# the Slack side of ``concierge internal`` (Block Kit and channel audiences, the directory sync)
internal_cli.slack_side = internal_cli.SlackSide(
    attach=slack_internal.attach,
    sync_employees=slack_internal.sync_employees,
    declare=slack_internal.declare,
)


async def _freeze_startup_objects() -> None:
    """Everything loaded at start (the NLU model, the content, the mapped classes) lives as
    long as the server: out of the cyclic garbage collector's sight, so that its full passes
    no longer walk it (measured: a pause of 100-230 ms every few seconds under load, the
    chat's p99; after this, under 5 ms)."""
    gc.collect()
    gc.freeze()


@app.command()
def run(
    content: ContentOpt = None,
    database_url: DbOpt = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
) -> None:
    """Run everything: web chat, APIs, admin, delivery, scheduler, configured channels."""
    import uvicorn

    from bot.logs import setup_logging
    from bot.runtime import Runtime
    from channels.app import create_app

    settings = settings_from(content, database_url, need_content=True, host=host, port=port)
    setup_logging(settings)
    try:
        runtime = Runtime(settings)
    except DatabaseError as e:
        raise fail(str(e)) from None

    async def prepare() -> int:
        from bot.staff import count_staff

        # closed after: the server's event loop opens its own connections
        async with migrated(runtime.db), runtime.db.session() as s:
            return await count_staff(s)

    staff_accounts = run_async(prepare())
    runtime.on_start(_freeze_startup_objects)
    app_ = create_app(settings, runtime=runtime)
    typer.secho(
        f"Concierge on http://{settings.host}:{settings.port}  (database: {runtime.db.safe_url})",
        fg=typer.colors.GREEN,
    )
    if not staff_accounts:  # first start: a one-time link to create the owner account
        from bot.staff import SETUP_SECONDS, setup_link

        typer.secho(
            f"No staff account yet. Create the owner account (link valid "
            f"{SETUP_SECONDS // 60} minutes, once): {setup_link(runtime.secret_key, settings.port)}",
            fg=typer.colors.YELLOW,
        )
    # log_config=None: uvicorn's loggers get no handlers of their own and propagate to the
    # root's, whose filter redacts the visitor tokens in its access log
    uvicorn.run(
        app_,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,
    )


app.add_typer(bot_app)  # every other command, after ``run``


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
