"""What every ``concierge`` command shares: the common options, a clear error, the settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from bot.settings import Settings, SettingsError, content_problem, load_settings
from bot.storage.db import DatabaseError

if TYPE_CHECKING:
    from bot.storage.db import Database

T = TypeVar("T")

ContentOpt = Annotated[
    Path | None,
    typer.Option("--content", help="Content folder with nlu_data/ and flows/", show_default=False),
]
DbOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (default: sqlite file concierge.db)"),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def settings_from(
    content: Path | None = None,
    database_url: str | None = None,
    *,
    need_content: bool = False,
    **extra: Any,
) -> Settings:
    """The settings, or a clear error; ``need_content``: the content folder (``--content``,
    ``CONCIERGE_CONTENT_DIR`` or the default) must hold ``nlu_data/``."""
    overrides: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if content is not None:
        if not content.is_dir():
            raise fail(f"content folder {content} does not exist")
        overrides["content_dir"] = content
    if database_url is not None:
        overrides["database_url"] = database_url
    try:
        settings = load_settings(**overrides)
    except SettingsError as e:
        raise fail(str(e)) from None
    if need_content and (problem := content_problem(settings.content_dir)):
        raise fail(problem)
    return settings


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``; a database error (cannot open it, cannot migrate it) is one clear
    line, exit 2."""
    try:
        return asyncio.run(main)
    except DatabaseError as e:
        raise fail(str(e)) from None


@asynccontextmanager
async def migrated(db: Database, revision: str = "head") -> AsyncIterator[None]:
    """``db`` upgraded to ``revision`` (Alembic) for the block; its connections are closed
    after it, whatever happens."""
    try:
        await db.upgrade(revision)
        yield
    finally:
        await db.dispose()
