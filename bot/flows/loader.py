"""Reading ``flows/*.yml`` into a :class:`~bot.flows.model.FlowBook`, with ``file:line`` errors.

A flow file holds ``flows:`` (Rasa CALM style: a mapping of flow id to flow). ``lifecycle.yml``
and ``prompts.yml`` in the same folder are other features' files and are skipped; texts live in
``flows/texts/<lang>.yml`` (see :mod:`bot.flows.texts`).

```yaml
flows:
  checkin:
    title: utter_flow_title/checkin           # the flow's name for people (a response)
    description: How is it going, a day after first use.
    trigger: {event: used, within: 3d, when: {segment: customer}}   # or a list of triggers
    purpose: service                          # service | marketing
    progress: false                           # true: "Step 2 of 5" on ask/collect steps
    steps:
      - wait: 1d
      - id: how
        ask: utter_checkin_question
        slot: feeling
        buttons:
          - {title: utter_checkin_great, value: great, next: great}
          - {title: utter_checkin_help, value: help, next: help}
      - id: great
        say: utter_checkin_glad
        next: end
      - id: help
        handoff: checkin
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.content.conditions import Env
from bot.content.loader import ContentError, Doc, PathKey, Problem, walk_files
from bot.flows.model import END, ID, Flow, FlowBook, Where

OTHER_FILES = ("lifecycle.yml", "prompts.yml")  # other features' files in flows/


@dataclass
class LoadResult:
    book: FlowBook
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def flow_files(flows_dir: Path) -> list[Path]:
    return [p for p in walk_files(flows_dir) if p.name not in OTHER_FILES]


def load_folder(flows_dir: Path, env: Env) -> LoadResult:
    """Every flow file of ``flows_dir``; problems are collected, not raised."""
    result = LoadResult(FlowBook())
    for path in flow_files(flows_dir):
        try:
            doc = Doc.load(path)
        except ContentError as e:
            result.problems.append(Problem(e.path, e.line, e.problem))
            continue
        load_doc(doc, env, result)
    return result


def load_doc(doc: Doc, env: Env, result: LoadResult) -> None:
    data = doc.data
    if not isinstance(data, Mapping) or "flows" not in data:
        result.problems.append(
            doc.problem((), "a flow file is a mapping with 'flows:' (flow id -> flow)")
        )
        return
    for key in data:
        if key not in ("flows", "version"):
            result.problems.append(doc.problem((key,), f"unknown top-level key {key!r} (flows)"))
    flows = data["flows"]
    if not isinstance(flows, Mapping) or not flows:
        result.problems.append(doc.problem(("flows",), "'flows:' maps flow ids to flows"))
        return
    for flow_id, raw in flows.items():
        at: PathKey = ("flows", flow_id)
        if not isinstance(flow_id, str) or not ID.match(flow_id):
            result.problems.append(
                doc.problem(at, f"flow id {flow_id!r}: lower-case letters, digits, _ (at most 40)")
            )
            continue
        if flow_id in result.book.flows:
            other = result.book.flows[flow_id]
            result.problems.append(
                doc.problem(
                    at, f"flow {flow_id!r} is defined twice (also {other.path}:{other.line})"
                )
            )
            continue
        try:
            flow = parse_flow(doc, flow_id, raw, env)
        except ContentError as e:
            result.problems.append(Problem(e.path, e.line, e.problem))
            continue
        result.book.flows[flow_id] = flow
        result.problems.extend(check_flow(doc, flow))


def parse_flow(doc: Doc, flow_id: str, raw: Any, env: Env) -> Flow:
    at: PathKey = ("flows", flow_id)
    if not isinstance(raw, Mapping):
        raise doc.error(at, "a flow is a mapping (description, trigger, steps)")
    in_flow = Env(env.segments, env.rfm, True, env.stages)
    flow = doc.validate(Flow, at, context=Where(doc, at, in_flow))
    by_id = {s.id: i for i, s in enumerate(flow.steps)}
    where = {"id": flow_id, "path": str(doc.path), "line": doc.line(at)}
    return flow.model_copy(update={**where, "by_id": by_id})


def check_flow(doc: Doc, flow: Flow) -> list[Problem]:
    """Checks inside one flow: jump targets exist, every step is reachable."""
    problems: list[Problem] = []
    steps_at: PathKey = ("flows", flow.id, "steps")
    for i, step in enumerate(flow.steps):
        for target in step.targets():
            if target != END and target not in flow.by_id:
                problems.append(
                    doc.problem(
                        (*steps_at, i),
                        f"step {step.id!r} goes to {target!r}, which is not a step of {flow.id!r}",
                    )
                )
    if problems:
        return problems
    seen: set[str] = set()
    todo = [flow.steps[0].id]
    while todo:
        sid = todo.pop()
        if sid == END or sid in seen:
            continue
        seen.add(sid)
        cur = flow.step(sid)
        assert cur is not None
        todo.extend(target for _, target in flow.edges(cur))
    for i, step in enumerate(flow.steps):
        if step.id not in seen:
            problems.append(
                doc.problem((*steps_at, i), f"step {step.id!r} of {flow.id!r} is unreachable")
            )
    return problems
