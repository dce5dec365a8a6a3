"""Everything under ``flows/`` at once: the lifecycle, the flows, their texts, and the checks
that need all of them (responses in every language, calls, triggers). Used at start (errors
stop the start) and by ``concierge flows validate`` (every problem is listed)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.content.loader import ContentError, Doc, Problem
from bot.flows.loader import OTHER_FILES, flow_files, load_folder
from bot.flows.model import FlowBook
from bot.flows.texts import load_texts, response_lines
from bot.lifecycle import config as lifecycle_config
from bot.lifecycle.config import LifecycleConfig
from bot.responses import Responses, Variant

# texts the runner itself uses (bot/flows/builtin_texts.yml; a shop may override them)
RUNNER_TEXTS = (
    "utter_flow_progress",
    "utter_flow_paused",
    "utter_flow_resumed",
    "utter_flow_resume_offer",
    "utter_flow_reminder",
    "utter_flow_nothing_open",
    "utter_flow_unknown",
    "utter_flow_invalid",
    "utter_flow_at_start",
    "utter_button_next",
    "utter_button_back",
    "utter_button_pause",
    "utter_button_continue",
    "utter_button_skip",
    "utter_linked",
    "utter_link_invalid",
)


class ContentProblems(ContentError):
    """Several problems: the first names the file and line, all are in ``problems``."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        super().__init__(first.path, first.line, first.message)
        self.problems = problems

    def __str__(self) -> str:
        more = len(self.problems) - 1
        lines = "\n".join(str(p) for p in self.problems[:20])
        return lines + (f"\n... and {more - 19} more" if more >= 20 else "")


@dataclass
class Content:
    lifecycle: LifecycleConfig
    book: FlowBook
    texts: dict[str, dict[str, list[Variant]]]
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def load_content(
    content_dir: Path,
    *,
    strict: bool = False,
    languages: Iterable[str] | None = None,
    responses: Responses | None = None,
) -> Content:
    """Load and check ``<content_dir>/flows``. ``strict``: raise on errors (missing
    translations are warnings then: the default language stands in)."""
    flows_dir = content_dir / "flows"
    problems: list[Problem] = []
    path = lifecycle_config.find(content_dir)
    try:
        lifecycle = lifecycle_config.load(path)
    except ContentError as e:
        problems.append(e.as_problem())
        lifecycle = LifecycleConfig(path)
    if path is not None and path.parent != flows_dir:
        # the shipped default stands in for a shop without one: its stages and rules, not
        # its follow-ups (those name the demo shop's texts)
        lifecycle.followups = {}
    problems += lifecycle.warnings
    loaded = load_folder(flows_dir, lifecycle.env(in_flow=True))
    problems += loaded.problems
    if responses is None:
        from bot.shop import load_shop

        try:
            registers = load_shop(content_dir).registers
        except ContentError as e:
            problems.append(e.as_problem())
            registers = {}
        responses = Responses.from_folder(content_dir / "nlu_data", registers=registers)
    texts, text_problems = load_texts(flows_dir, responses.registers)
    problems += text_problems
    book = loaded.book
    problems += _check_calls(book)
    responses.add_defaults(texts)
    langs = list(languages) if languages is not None else _languages(content_dir, texts)
    problems += _check_responses(content_dir, book, lifecycle, responses, langs, strict)
    problems += _check_triggers(content_dir, book, lifecycle)
    content = Content(lifecycle, book, texts, problems)
    if strict and content.errors:
        raise ContentProblems(content.errors)
    return content


def _languages(content_dir: Path, texts: dict[str, dict[str, list[Variant]]]) -> list[str]:
    nlu = content_dir / "nlu_data"
    found = {p.name for p in nlu.iterdir() if p.is_dir()} if nlu.is_dir() else set()
    return sorted(found | set(texts))


def _check_calls(book: FlowBook) -> list[Problem]:
    out: list[Problem] = []
    for flow in book.flows.values():
        for step in flow.calls():
            if step.flow not in book.flows:
                out.append(
                    Problem(
                        flow.path, step.line, f"step {step.id!r} calls unknown flow {step.flow!r}"
                    )
                )
    # a flow that (through others) calls itself would never end
    graph = {f.id: {s.flow for s in f.calls() if s.flow in book.flows} for f in book.flows.values()}
    for start in graph:
        stack, seen = [start], set()
        while stack:
            cur = stack.pop()
            for nxt in graph.get(cur, ()):
                if nxt == start:
                    f = book.flows[start]
                    out.append(
                        Problem(f.path, f.line, f"flow {start!r} calls itself (through {cur!r})")
                    )
                    stack = []
                    break
                if nxt not in seen and nxt is not None:
                    seen.add(nxt)
                    stack.append(nxt)
    return out


def _check_responses(
    content_dir: Path,
    book: FlowBook,
    lifecycle: LifecycleConfig,
    responses: Responses,
    languages: list[str],
    strict: bool,
) -> list[Problem]:
    out: list[Problem] = []
    used: list[tuple[str, str, int | None]] = []
    for flow in book.flows.values():
        used += [(name, flow.path, line) for name, line in flow.responses()]
    if lifecycle.path is not None:
        used += [(name, str(lifecycle.path), line) for name, line in lifecycle.responses()]
    reported: set[tuple[str, str]] = set()
    for name, path, line in used:
        have = [lang for lang in languages if name in responses.names(lang)]
        if not have:
            if (name, "*") not in reported:
                reported.add((name, "*"))
                out.append(Problem(path, line, f"unknown response {name!r} (in no language)"))
            continue
        for lang in languages:
            if name not in responses.names(lang) and (name, lang) not in reported:
                reported.add((name, lang))
                out.append(
                    Problem(
                        path,
                        line,
                        f"response {name!r} is missing in {lang}",
                        "warning" if strict else "error",
                    )
                )
    return out


_INTENT = re.compile(r"^\s*-\s*intent:\s*([\w/.-]+)\s*$", re.MULTILINE)


def _intents(content_dir: Path) -> set[str]:
    out: set[str] = set()
    nlu = content_dir / "nlu_data"
    if nlu.is_dir():
        for f in nlu.glob("*/*.yml"):
            try:
                out.update(_INTENT.findall(f.read_text(encoding="utf-8")))
            except OSError:
                continue
    return out


def _check_triggers(content_dir: Path, book: FlowBook, lifecycle: LifecycleConfig) -> list[Problem]:
    out: list[Problem] = []
    intents = _intents(content_dir)
    called = {s.flow for f in book.flows.values() for s in f.calls()}
    for flow in book.flows.values():
        for t in flow.triggers:
            if t.kind == "intent" and intents and t.value not in intents:
                out.append(
                    Problem(
                        flow.path,
                        t.line,
                        f"trigger intent {t.value!r} is not in nlu_data",
                        "warning",
                    )
                )
            if t.kind == "event" and lifecycle.events and t.value not in lifecycle.events:
                out.append(
                    Problem(
                        flow.path,
                        t.line,
                        f"trigger event {t.value!r} is not listed in lifecycle.yml events",
                        "warning",
                    )
                )
        if not flow.triggers and flow.id not in called:
            out.append(
                Problem(
                    flow.path,
                    flow.line,
                    f"flow {flow.id!r} has no trigger and is never called",
                    "warning",
                )
            )
    return out


def content_files(content_dir: Path) -> list[Path]:
    """The files ``concierge flows validate`` reads."""
    flows_dir = content_dir / "flows"
    files = flow_files(flows_dir)
    life = flows_dir / "lifecycle.yml"
    if life.is_file():
        files.append(life)
    return files


__all__ = ["OTHER_FILES", "Content", "ContentProblems", "Doc", "load_content", "response_lines"]
