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

from bot.cli_common import DbOpt, fail, settings_from
from bot.nlu.data import ContentError, load_content
from bot.nlu.encoder import EncoderError, load_encoder
from bot.nlu.evaluate import intent_report
from bot.nlu.model import EmbeddedNLU, content_hash
from bot.nlu.semantic import reliability

nlu_app = typer.Typer(
    help="Train and test the embedded NLU (Rasa-format data).", no_args_is_help=True
)
data_app = typer.Typer(help="Check content files.", no_args_is_help=True)
faq_app = typer.Typer(help="FAQ reports.", no_args_is_help=True)
console = Console()


def _default_encoder() -> str:
    from bot.settings import Settings

    return str(Settings.model_fields["nlu_encoder"].default)


@nlu_app.command("train")
def train(
    data: Annotated[Path, typer.Option("--data", help="nlu.yml file or content folder")],
    out: Annotated[Path, typer.Option("--out", help="model folder")],
    encoder: Annotated[
        str | None,
        typer.Option(
            "--encoder",
            envvar="CONCIERGE_NLU_ENCODER",
            help="semantic tier: e5 or none (default: the setting's default)",
        ),
    ] = None,
) -> None:
    """Train the embedded model and save it."""
    t = time.perf_counter()
    try:
        enc = load_encoder(encoder or _default_encoder())
        model = EmbeddedNLU.train(load_content(data), content_hash=content_hash(data), encoder=enc)
    except (ContentError, ValueError, EncoderError) as e:
        raise fail(str(e)) from None
    path = model.save(out)
    typer.echo(
        f"trained {', '.join(model.languages)} (encoder {model.encoder_name}) in "
        f"{time.perf_counter() - t:.1f}s -> {path}"
    )


@nlu_app.command("test")
def test(
    model_dir: Annotated[Path, typer.Option("--model", help="model folder")],
    data: Annotated[Path, typer.Option("--data", help="nlu.yml file or content folder to test on")],
    out: Annotated[Path, typer.Option("--out", help="folder for the reports")],
    threshold: Annotated[
        float | None,
        typer.Option(
            help="answer at or above it, else nlu_fallback (default: the target precision "
            "0.9 for a calibrated model, 0.3 for the n-gram model alone)"
        ),
    ] = None,
) -> None:
    """Write Rasa-shaped intent_report.json and intent_errors.json; print a summary, the
    calibration of the confidence (reliability table, ECE), top-3 accuracy and the share of
    questions answered right / answered wrong / clarified / rejected as out of scope."""
    try:
        model = EmbeddedNLU.load(model_dir)
        test_data = load_content(data)
    except (ContentError, ValueError, OSError) as e:
        raise fail(str(e)) from None
    if threshold is None:
        threshold = 0.9 if model.calibrator is not None else 0.3
    gold, pred, errors = [], [], []
    confidences: list[float] = []
    top1_right: list[bool] = []
    split: Counter[str] = Counter()
    top3 = 0
    for lang, d in test_data.items():
        for ex in d.examples:
            r = model.parse(ex.text, lang, threshold=0.0)
            gold.append(ex.intent)
            pred.append(r.intent)
            confidences.append(r.confidence)
            top1_right.append(r.intent == ex.intent)
            top3 += ex.intent in [n for n, _ in r.ranking[:3]]
            if r.out_of_scope:
                split["rejected"] += 1
            elif r.confidence < threshold:
                split["clarified"] += 1
            else:
                split["answered right" if r.intent == ex.intent else "answered wrong"] += 1
            if r.intent != ex.intent:
                errors.append(
                    {
                        "text": ex.text,
                        "intent": ex.intent,
                        "intent_prediction": {"name": r.intent, "confidence": r.confidence},
                    }
                )
    report = intent_report(gold, pred)
    rows, ece = reliability(confidences, top1_right)
    report["calibration"] = {
        "ece": ece,
        "bins": [{"low": lo, "high": hi, "count": n, "right": acc} for lo, hi, n, acc in rows],
    }
    n = len(gold) or 1
    report["top3_accuracy"] = top3 / n
    report["at_threshold"] = {"threshold": threshold, **{k: v / n for k, v in split.items()}}
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
    cal = Table(title=f"calibration (encoder {model.encoder_name}): confidence vs share right")
    for col in ("confidence", "questions", "right"):
        cal.add_column(col, justify="right")
    for lo, hi, count, acc in rows:
        cal.add_row(f"{lo:.1f}-{hi:.1f}", str(count), f"{acc:.2f}")
    console.print(cal)
    typer.echo(f"ECE: {ece:.3f}  top-3 accuracy: {top3 / n:.3f}")
    typer.echo(
        f"at threshold {threshold}: "
        + ", ".join(
            f"{k} {split[k] / n:.3f}"
            for k in ("answered right", "answered wrong", "clarified", "rejected")
        )
    )
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
    from bot.nlu.answers import load_responses
    from bot.nlu.data import language_folders, load_nlu_file

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
    database_url: DbOpt = None,
    top: Annotated[int, typer.Option(help="how many clusters")] = 20,
) -> None:
    """The most frequent questions the FAQ could not answer, clustered."""
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
