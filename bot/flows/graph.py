"""A flow as a Mermaid flowchart (``concierge flows graph FLOW``)."""

from __future__ import annotations

from bot.flows.loader import successors
from bot.flows.model import END, Flow, Step
from bot.flows.source import duration_text


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


def _node(step: Step) -> str:
    k, sid = step.kind, step.id
    if k == "say":
        return f'{sid}["say {_label(step.response or "")}"]'
    if k == "ask":
        return f'{sid}{{{{"ask {_label(step.response or "")}"}}}}'
    if k == "collect":
        return f'{sid}[/"collect {step.slot} ({step.validate})"/]'
    if k == "wait":
        return f'{sid}(["wait {duration_text(step.duration) if step.duration else "?"}"])'
    if k == "branch":
        return f'{sid}{{"branch"}}'
    if k == "call":
        return f'{sid}[["call {step.flow}"]]'
    if k == "handoff":
        return f'{sid}>"handoff: {step.reason}"]'
    if k == "set":
        fields = ", ".join(f for f, _ in step.values)
        return f'{sid}["set {_label(fields)}"]'
    if k == "record":
        return f'{sid}["record event {step.event}"]'
    return f"{sid}((end))"


def mermaid(flow: Flow) -> str:
    lines = ["flowchart TD"]
    trig = "<br/>".join(_label(t.describe()) for t in flow.triggers) or "called by another flow"
    lines.append(f'  start(("{flow.id}<br/>{trig}"))')
    lines.append(f"  {END}_((end))")
    for step in flow.steps:
        lines.append(f"  {_node(step)}")
    first = flow.first()
    lines.append(f"  start --> {first}")

    def ref(target: str) -> str:
        return f"{END}_" if target == END else target

    for step in flow.steps:
        if step.kind == "ask" and any(c.url is None for c in step.choices):
            default = flow.following(step)
            for c in step.choices:
                if c.url is None:
                    lines.append(f'  {step.id} -- "{_label(c.title)}" --> {ref(c.next or default)}')
            continue
        if step.kind == "branch":
            for i, b in enumerate(step.branches):
                label = "else" if b.when is None else f"if #{i + 1}"
                lines.append(f'  {step.id} -- "{label}" --> {ref(b.then)}')
            if step.branches[-1].when is not None:
                lines.append(f'  {step.id} -- "otherwise" --> {ref(flow.following(step))}')
            continue
        for target in dict.fromkeys(successors(flow, step)):
            lines.append(f"  {step.id} --> {ref(target)}")
    return "\n".join(lines) + "\n"
