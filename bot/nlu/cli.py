"""``concierge nlu train|test``, ``concierge data validate``, ``concierge faq gaps``."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bot.nlu.data import ContentError, load_content
from bot.nlu.evaluate import intent_report
from bot.nlu.model import EmbeddedNLU, content_hash

nlu_app = typer.Typer(
    help="Train and test the embedded NLU (Rasa-format data).", no_args_is_help=True
)
data_app = typer.Typer(help="Check content files.", no_args_is_help=True)
faq_app = typer.Typer(help="FAQ reports.", no_args_is_help=True)
console = Console()


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


@nlu_app.command("train")
def train(
    data: Annotated[Path, typer.Option("--data", help="nlu.yml file or content folder")],
    out: Annotated[Path, typer.Option("--out", help="model folder")],
) -> None:
    """Train the embedded model and save it."""
    t = time.perf_counter()
    try:
        model = EmbeddedNLU.train(load_content(data), content_hash=content_hash(data))
    except (ContentError, ValueError) as e:
        raise _fail(str(e)) from None
    path = model.save(out)
    typer.echo(f"trained {', '.join(model.languages)} in {time.perf_counter() - t:.1f}s -> {path}")


@nlu_app.command("test")
def test(
    model_dir: Annotated[Path, typer.Option("--model", help="model folder")],
    data: Annotated[Path, typer.Option("--data", help="nlu.yml file or content folder to test on")],
    out: Annotated[Path, typer.Option("--out", help="folder for the reports")],
    threshold: Annotated[float, typer.Option(help="below it: nlu_fallback")] = 0.0,
) -> None:
    """Write Rasa-shaped intent_report.json and intent_errors.json; print a summary."""
    try:
        model = EmbeddedNLU.load(model_dir)
        test_data = load_content(data)
    except (ContentError, ValueError, OSError) as e:
        raise _fail(str(e)) from None
    gold, pred, errors = [], [], []
    for lang, d in test_data.items():
        for ex in d.examples:
            r = model.parse(ex.text, lang, threshold=threshold)
            gold.append(ex.intent)
            pred.append(r.intent)
            if r.intent != ex.intent:
                errors.append(
                    {
                        "text": ex.text,
                        "intent": ex.intent,
                        "intent_prediction": {"name": r.intent, "confidence": r.confidence},
                    }
                )
    report = intent_report(gold, pred)
    out.mkdir(parents=True, exist_ok=True)
    (out / "intent_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (out / "intent_errors.json").write_text(json.dumps(errors, indent=2, ensure_ascii=False))
    table = Table(title=f"{len(gold)} examples")
    for col in ("intent", "precision", "recall", "f1-score", "support"):
        table.add_column(col, justify="left" if col == "intent" else "right")
    for name, row in report.items():
        if isinstance(row, dict) and "support" in row:
            table.add_row(
                name,
                f"{row['precision']:.2f}",
                f"{row['recall']:.2f}",
                f"{row['f1-score']:.2f}",
                str(row["support"]),
            )
    console.print(table)
    typer.echo(f"accuracy: {report['accuracy']:.3f}  ({len(errors)} errors) -> {out}")


@data_app.command("validate")
def validate_cmd(
    content: Annotated[
        Path | None,
        typer.Option(
            "--content",
            help="content folder (or its nlu_data/); default: CONCIERGE_CONTENT_DIR, the current "
            "folder if it holds nlu_data/, else the demo content",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check nlu.yml and responses.yml of every language; say what was checked; exits 1 on
    errors."""
    from bot.nlu.validate import validate

    if content is None:
        from bot.cli import settings_from

        content = settings_from().content_dir
    problems = validate(content)
    for p in problems:
        typer.secho(str(p), fg=typer.colors.RED if p.severity == "error" else typer.colors.YELLOW)
    for line in _checked(content):
        typer.echo(line)
    errors = sum(p.severity == "error" for p in problems)
    typer.echo(f"{errors} error(s), {len(problems) - errors} warning(s)")
    if errors:
        raise typer.Exit(1)


def _checked(content: Path) -> list[str]:
    """What ``data validate`` looked at: per language, the intents, examples and responses."""
    from bot.nlu.data import language_folders, load_nlu_file
    from bot.nlu.model import load_responses

    folders = language_folders(content)
    if not folders:
        return []
    base = next(iter(folders.values())).parent
    lines = [f"checked {base}: {len(folders)} language(s) ({', '.join(folders)})"]
    totals = Counter[str]()
    every_intent: set[str] = set()
    for lang, folder in folders.items():
        intents: set[str] = set()
        examples = 0
        for f in sorted(folder.glob("*.yml")):
            if f.name == "responses.yml":
                continue
            try:
                data = load_nlu_file(f, lang)
            except (ContentError, ValueError):
                continue  # reported above with file:line
            intents.update(data.intents)
            examples += len(data.examples)
        responses = len(load_responses(folder / "responses.yml"))  # unreadable: 0, reported
        every_intent |= intents
        totals.update(examples=examples, responses=responses)
        lines.append(
            f"  {lang}: {len(intents)} intents, {examples} examples, {responses} responses"
        )
    lines.append(
        f"  all: {len(every_intent)} intents, {totals['examples']} examples, "
        f"{totals['responses']} responses"
    )
    return lines


@faq_app.command("gaps")
def gaps(
    database_url: Annotated[str | None, typer.Option("--database-url")] = None,
    top: Annotated[int, typer.Option(help="how many clusters")] = 20,
) -> None:
    """The most frequent questions the FAQ could not answer, clustered."""
    from bot.cli import settings_from
    from bot.nlu.gaps import find_gaps

    settings = settings_from(None, database_url)
    clusters = asyncio.run(find_gaps(settings.database_url, top))
    if not clusters:
        typer.echo("no unanswered questions")
        return
    table = Table(title="FAQ gaps")
    table.add_column("asked", justify="right")
    table.add_column("language")
    table.add_column("example")
    table.add_column("similar")
    for c in clusters:
        table.add_row(str(c.count), c.language, c.example, "; ".join(c.others[:2]))
    console.print(table)


__all__ = ["Counter", "data_app", "faq_app", "nlu_app"]
