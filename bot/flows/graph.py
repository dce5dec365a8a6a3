"""A flow as a Mermaid flowchart (``concierge flows graph FLOW``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.content.durations import duration_text
from bot.flows.model import END, Flow, Step

Words = Callable[[str], str | None]
"""A response name -> the text a customer sees in the chosen language (None: unknown)."""

MAX_TEXT = 80  # characters of a step's text in its box


def _label(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", "<br/>")


def _said(name: str | None, words: Words | None) -> str:
    """A step's text in the chosen language, else its response name."""
    if not name:
        return ""
    text = words(name) if words is not None else None
    if not text:
        return name
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= MAX_TEXT else one_line[: MAX_TEXT - 1] + "…"


_BOXES: dict[str, tuple[str, Callable[[Any, Words | None], str], str]] = {
    # kind: (the box's opening mark, its text, its closing mark)
    "say": ("[", lambda s, w: f"say {_said(s.response, w)}", "]"),
    "ask": ("{{", lambda s, w: f"ask {_said(s.response, w)}", "}}"),
    "collect": ("[/", lambda s, w: f"collect {s.slot} ({s.validation[0]})", "/]"),
    "wait": ("([", lambda s, w: f"wait {duration_text(s.duration)}", "])"),
    "branch": ("{", lambda s, w: "branch", "}"),
    "call": ("[[", lambda s, w: f"call {s.flow}", "]]"),
    "handoff": (">", lambda s, w: f"handoff: {s.reason}", "]"),
    "set": ("[", lambda s, w: "set " + ", ".join(f for f, _ in s.values), "]"),
    "record": ("[", lambda s, w: f"record event {s.event}", "]"),
}


def _node(step: Step, words: Words | None = None) -> str:
    if step.kind == "end":
        return f"{step.id}((end))"
    opening, text, closing = _BOXES[step.kind]
    return f'{step.id}{opening}"{_label(text(step, words))}"{closing}'


def mermaid(flow: Flow, words: Words | None = None) -> str:
    """The flowchart; with ``words`` each step and button shows its text in that language
    (response names where a text is missing)."""
    lines = ["flowchart TD"]
    trig = "<br/>".join(_label(t.describe()) for t in flow.triggers) or "called by another flow"
    lines.append(f'  start(("{flow.id}<br/>{trig}"))')
    lines.append(f"  {END}_((end))")
    for step in flow.steps:
        lines.append(f"  {_node(step, words)}")
    first = flow.first()
    lines.append(f"  start --> {first}")

    def ref(target: str) -> str:
        return f"{END}_" if target == END else target

    for step in flow.steps:
        for via, target in flow.edges(step):
            if via is None:
                lines.append(f"  {step.id} --> {ref(target)}")
            else:
                label = via if isinstance(via, str) else _label(_said(via.title, words))
                lines.append(f'  {step.id} -- "{label}" --> {ref(target)}')
    return "\n".join(lines) + "\n"
