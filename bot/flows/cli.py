"""``concierge flows validate`` and ``concierge flows graph FLOW``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli_common import fail

flows_app = typer.Typer(help="Flows (flows/*.yml): check them, draw them.", no_args_is_help=True)

ContentOpt = Annotated[
    Path | None,
    typer.Option("--content", help="Content folder with flows/ and nlu_data/", show_default=False),
]


def _content_dir(content: Path | None) -> Path:
    from bot.settings import SettingsError, load_settings

    if content is not None:
        if not content.is_dir():
            raise fail(f"content folder {content} does not exist")
        return content
    try:
        return load_settings().content_dir
    except SettingsError as e:
        raise fail(str(e)) from None


@flows_app.command("validate")
def validate(content: ContentOpt = None) -> None:
    """Check every flow and flows/lifecycle.yml: structure, unknown responses, unreachable
    steps, missing languages, calls and triggers. Problems are printed as file:line."""
    from bot.flows.content import load_content

    folder = _content_dir(content)
    result = load_content(folder)
    for p in result.problems:
        typer.secho(str(p), fg="red" if p.severity == "error" else "yellow")
    errors = len(result.errors)
    warnings = len(result.problems) - errors
    summary = (
        f"{len(result.book)} flows, {len(result.lifecycle.stages)} stages, "
        f"{len(result.lifecycle.transitions)} transitions, "
        f"{len(result.lifecycle.segments)} segments: {errors} errors, {warnings} warnings"
    )
    typer.secho(summary, fg="red" if errors else "green")
    if errors:
        raise typer.Exit(1)


@flows_app.command("graph")
def graph(
    flow: Annotated[str, typer.Argument(help="The flow id")],
    content: ContentOpt = None,
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="Show each step's text in this language (e.g. de)"),
    ] = None,
) -> None:
    """Print a flow as a Mermaid flowchart (paste it into any Mermaid viewer): each step's
    text in the chosen language, or its response name where there is none."""
    from bot.content.loader import ContentError
    from bot.flows.content import load_content
    from bot.flows.graph import mermaid
    from bot.responses import Responses
    from bot.shop import load_shop

    folder = _content_dir(content)
    try:
        registers = load_shop(folder).registers  # the texts in the shop's register
    except ContentError as e:
        raise fail(str(e)) from None
    responses = Responses.from_folder(folder / "nlu_data", registers=registers)
    result = load_content(folder, responses=responses)
    found = result.book.get(flow)
    if found is None:
        known = ", ".join(sorted(result.book.flows)) or "none"
        raise fail(f"no flow {flow!r} (flows: {known})")
    words = None
    if lang is not None:
        if lang not in responses.languages:
            known = ", ".join(responses.languages)
            raise fail(f"no texts in {lang!r} (languages: {known})")

        def words(name: str) -> str | None:
            variants = responses.variants(name, lang)
            return variants[0].text if variants else None

    typer.echo(mermaid(found, words), nl=False)
