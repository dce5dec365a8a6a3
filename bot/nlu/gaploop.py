"""The FAQ-gap loop: from the questions the assistant could not answer to a better model.

1. :func:`recent_gaps`: the latest unanswered questions (the NLU said ``nlu_fallback``),
   clustered by wording within each language (:func:`bot.nlu.gaps.cluster`).
2. :func:`add_example` / :func:`add_topic`: a question becomes an example of an intent, or a new
   FAQ topic with its answer, written into the content files (``nlu_data/<lang>/nlu.yml`` and
   ``responses.yml``) as a person would: one line inserted where it belongs, the rest of the
   file untouched. The content is then validated (``concierge data validate``); any error puts
   the files back as they were and names the problem.
3. :func:`retrain`: the embedded model trained again from the content (in a thread), measured
   before and after on the shop's own tests, and on the cluster's questions themselves.

The shop's own tests are the Rasa-format files under ``<content>/tests/nlu/<lang>/`` when the
shop keeps any (as ``concierge nlu test --data`` reads them); otherwise the training examples.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content.loader import Problem
from bot.nlu.data import FAQ_PREFIX, ContentError, TrainingData, language_folders, load_content
from bot.nlu.gaps import Cluster, cluster
from bot.nlu.model import EmbeddedNLU
from bot.nlu.text import fold
from bot.nlu.validate import validate
from bot.storage.models import Message

TOPIC = re.compile(r"^[a-z0-9][a-z0-9_]{0,40}$")
MAX_TEXT = 300


class ContentEditError(ValueError):
    """The change cannot be made; the content files are as they were."""


async def recent_gaps(s: AsyncSession, *, latest: int = 5000, top: int = 30) -> list[Cluster]:
    """The clusters of the ``latest`` unanswered questions, most asked first."""
    rows = (
        await s.execute(
            select(Message.text, Message.language)
            .where(
                Message.direction == "in",
                Message.intent == "nlu_fallback",
                Message.payload.is_(None),
            )
            .order_by(Message.id.desc())
            .limit(latest)
        )
    ).all()
    return cluster([(t, lang or "?") for t, lang in reversed(rows)])[:top]


def _clean(text: str, what: str = "example") -> str:
    text = " ".join(text.split())
    if not text:
        raise ContentEditError(f"the {what} is empty")
    if len(text) > MAX_TEXT:
        raise ContentEditError(f"the {what} is longer than {MAX_TEXT} characters")
    if what == "example" and re.search(r"[\[\]{}]", text):
        raise ContentEditError("an example cannot hold [ ] { } (the entity markup of Rasa files)")
    return text


def _folder(content: Path, lang: str) -> Path:
    folders = language_folders(content)
    if lang not in folders:
        raise ContentEditError(
            f"no content in language {lang!r} (there is: {', '.join(folders) or 'none'})"
        )
    return folders[lang]


def _nlu_files(folder: Path) -> list[Path]:
    return [f for f in sorted(folder.glob("*.yml")) if f.name != "responses.yml"]


def intents(content: Path, lang: str) -> list[str]:
    """The intents of a language, as the content files name them."""
    data = load_content(content).get(lang)
    return sorted(data.intents) if data else []


def _examples_node(path: Path, intent: str) -> yaml.ScalarNode | None:
    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return None
    for k, v in root.value:
        if k.value != "nlu" or not isinstance(v, yaml.SequenceNode):
            continue
        for item in v.value:
            if not isinstance(item, yaml.MappingNode):
                continue
            fields = {kk.value: vv for kk, vv in item.value}
            name = fields.get("intent")
            ex = fields.get("examples")
            if (
                isinstance(name, yaml.ScalarNode)
                and str(name.value).strip() == intent
                and isinstance(ex, yaml.ScalarNode)
                and ex.style == "|"
            ):
                return ex
    return None


@dataclass
class Edit:
    """Files changed by one edit, with their former contents (to put back)."""

    files: dict[Path, str] = field(default_factory=dict)
    description: str = ""

    def keep(self, path: Path) -> None:
        self.files.setdefault(path, path.read_text(encoding="utf-8"))

    def undo(self) -> None:
        for path, text in self.files.items():
            path.write_text(text, encoding="utf-8")


def _check(content: Path, edit: Edit) -> None:
    """Validate the content after an edit; any error undoes it."""
    try:
        problems = [p for p in validate(content) if p.severity == "error"]
    except (ContentError, yaml.YAMLError) as e:
        problems = [Problem("content", None, str(e))]
    if problems:
        edit.undo()
        raise ContentEditError("; ".join(str(p) for p in problems[:3]))


def add_example(content: Path, lang: str, intent: str, text: str) -> Edit:
    """Insert ``- text`` after the last example of ``intent`` in its ``nlu.yml``."""
    text = _clean(text)
    folder = _folder(content, lang)
    data = load_content(content).get(lang) or TrainingData(language=lang)
    for ex in data.examples:
        if fold(ex.text) == fold(text):
            raise ContentEditError(
                f"{text!r} is already an example of {ex.intent} ({Path(ex.file).name}:{ex.line})"
            )
    for path in _nlu_files(folder):
        node = _examples_node(path, intent)
        if node is None:
            continue
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        first = node.start_mark.line + 1
        # a block ends where the next token starts (column 0 of the line after it)
        end = node.end_mark.line + (node.end_mark.column > 0)
        last = max(
            (i for i in range(first, min(end, len(lines))) if lines[i].strip()),
            default=None,
        )
        if last is None:
            break
        indent = lines[last][: len(lines[last]) - len(lines[last].lstrip())]
        edit = Edit(description=f"added {text!r} to {intent} ({lang})")
        edit.keep(path)
        if not lines[last].endswith("\n"):
            lines[last] += "\n"
        lines.insert(last + 1, f"{indent}- {text}\n")
        path.write_text("".join(lines), encoding="utf-8")
        _check(content, edit)
        return edit
    raise ContentEditError(f"no intent {intent!r} with a '|' examples block in {lang}")


def _append_to(path: Path, key: str, block: str) -> None:
    """Insert ``block`` at the end of the top-level key's list or mapping (``nlu``,
    ``responses``), wherever that key is in the file."""
    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines = text.splitlines(keepends=True)
    node = None
    if isinstance(root, yaml.MappingNode):
        node = next((v for k, v in root.value if k.value == key), None)
    if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) or not node.value:
        raise ContentEditError(f"{path.name} has no '{key}:' entries to add to")
    end = node.end_mark.line if node.end_mark.column == 0 else node.end_mark.line + 1
    if end > 0 and end <= len(lines) and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    lines.insert(end, block)
    path.write_text("".join(lines), encoding="utf-8")


def add_topic(content: Path, lang: str, topic: str, example: str, answer: str) -> Edit:
    """A new FAQ topic ``faq/<topic>``: its first example in ``nlu.yml``, its answer
    ``utter_faq/<topic>`` in ``responses.yml``."""
    if not TOPIC.match(topic):
        raise ContentEditError(
            "a topic name is lower-case letters, digits and _ (up to 40), e.g. opening_hours"
        )
    example = _clean(example)
    answer = _clean(answer, "answer")
    folder = _folder(content, lang)
    intent = f"{FAQ_PREFIX}{topic}"
    if intent in intents(content, lang):
        raise ContentEditError(f"{intent} exists already: add an example to it instead")
    nlu, responses = folder / "nlu.yml", folder / "responses.yml"
    if not responses.exists():
        raise ContentEditError(f"{lang} has no responses.yml")
    edit = Edit(description=f"new topic {intent} ({lang})")
    edit.keep(nlu)
    edit.keep(responses)
    try:
        nlu_text = nlu.read_text(encoding="utf-8")
        m = re.search(r"^([ \t]*)- intent:", nlu_text, re.MULTILINE)
        ind = m.group(1) if m else ""
        block = f"{ind}- intent: {intent}\n{ind}  examples: |\n{ind}    - {example}\n"
        _append_to(nlu, "nlu", block)
        r_text = responses.read_text(encoding="utf-8")
        m = re.search(r"^([ \t]*)utter_", r_text, re.MULTILINE)
        rind = m.group(1) if m else "  "
        quoted = json.dumps(answer, ensure_ascii=False)
        _append_to(responses, "responses", f"{rind}utter_{intent}:\n{rind}- text: {quoted}\n")
    except (OSError, yaml.YAMLError) as e:
        edit.undo()
        raise ContentEditError(str(e)) from None
    _check(content, edit)
    return edit


# --- measuring --------------------------------------------------------------------------------


def shop_tests(content: Path) -> tuple[dict[str, TrainingData], str]:
    """The shop's own test examples, and what they are."""
    folder = content / "tests" / "nlu"
    if folder.is_dir():
        try:
            return load_content(folder), f"the shop's tests ({folder})"
        except ContentError:
            pass
    return load_content(content), "the training examples (the shop keeps no tests/nlu/)"


def accuracy(model: EmbeddedNLU, tests: dict[str, TrainingData]) -> tuple[int, int]:
    """Examples whose intent the model ranks first (as ``concierge nlu test``), of all."""
    right = total = 0
    for lang, d in tests.items():
        if lang not in model.languages:
            continue
        for ex in d.examples:
            total += 1
            right += model.parse(ex.text, lang, threshold=0.0).intent == ex.intent
    return right, total


def answered(
    model: EmbeddedNLU,
    questions: list[str],
    lang: str,
    intent: str,
    threshold: float,
    topic_thresholds: dict[str, float],
) -> int:
    """How many of ``questions`` the model answers with ``intent`` at the serving threshold."""
    return sum(
        model.parse(q, lang, threshold=threshold, topic_thresholds=topic_thresholds).intent
        == intent
        for q in questions
    )


@dataclass
class Outcome:
    """What a retraining changed."""

    change: str
    tested_on: str
    before: tuple[int, int]
    after: tuple[int, int]
    questions: int
    answered_before: int
    answered_after: int

    @staticmethod
    def pct(x: tuple[int, int]) -> float | None:
        return x[0] / x[1] if x[1] else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "tested_on": self.tested_on,
            "accuracy_before": self.pct(self.before),
            "accuracy_after": self.pct(self.after),
            "tests": self.after[1],
            "questions": self.questions,
            "answered_before": self.answered_before,
            "answered_after": self.answered_after,
        }


def retrain(
    content: Path,
    model_dir: Path,
    *,
    languages: list[str] | None,
    encoder: str,
    old: EmbeddedNLU,
    lang: str,
    intent: str,
    questions: list[str],
    threshold: float,
    topic_thresholds: dict[str, float],
    change: str,
) -> tuple[EmbeddedNLU, Outcome]:
    """Train the model from the content as it is now (blocking: run it in a thread) and
    measure the old and the new one on the same tests."""
    from bot.nlu.service import load_or_train

    tests, tested_on = shop_tests(content)
    before = accuracy(old, tests)
    was = answered(old, questions, lang, intent, threshold, topic_thresholds)
    nlu_dir = content / "nlu_data" if (content / "nlu_data").is_dir() else content
    new = load_or_train(nlu_dir, model_dir, languages, encoder)
    after = accuracy(new, tests)
    now = answered(new, questions, lang, intent, threshold, topic_thresholds)
    return new, Outcome(change, tested_on, before, after, len(questions), was, now)
