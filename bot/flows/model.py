"""Flows as data: triggers and steps (design §3), parsed from ``flows/*.yml`` by the loader."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.content.conditions import Always, Cond

END = "end"
STEP_KINDS = ("say", "ask", "collect", "wait", "branch", "call", "handoff", "set", "record", "end")
TRIGGER_KINDS = ("intent", "event", "stage", "link")
VALIDATORS = ("text", "email", "number", "integer", "phone", "date", "regex", "choice")


@dataclass(frozen=True)
class Trigger:
    kind: str  # intent | event | stage | link
    value: str
    when: Cond = field(default_factory=Always)
    within: timedelta | None = None  # events: not for events older than this (backfills)
    line: int | None = None
    first: bool = False  # events: only the person's first event of that type

    def describe(self) -> str:
        return f"{self.kind}: {self.value}" + (" (first)" if self.first else "")


@dataclass(frozen=True)
class Choice:
    title: str  # response name
    value: str | None = None
    next: str | None = None  # step id | "end" | None (the step's next)
    url: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Branch:
    when: Cond | None  # None: else
    then: str  # step id | "end"
    line: int | None = None


@dataclass(frozen=True)
class Step:
    id: str
    kind: str
    line: int | None
    next: str | None = None  # explicit next step id | "end"; None: the following step
    response: str | None = None  # say / ask / collect: the text
    choices: tuple[Choice, ...] = ()  # ask: buttons (answers, links)
    slot: str | None = None  # ask / collect: where the answer goes
    validate: str = "text"  # collect
    pattern: str | None = None  # collect with validate: regex
    options: tuple[str, ...] = ()  # collect with validate: choice
    invalid: str | None = None  # collect: response when the answer does not validate
    save: str | None = None  # collect: contact field or attributes.<name> to keep it in
    duration: timedelta | None = None  # wait
    branches: tuple[Branch, ...] = ()  # branch
    flow: str | None = None  # call
    reason: str = "flow"  # handoff
    values: tuple[tuple[str, Any], ...] = ()  # set: (field, value or "{slot}")
    event: str | None = None  # record: an event type
    progress: bool | None = None  # counts in "Step 2 of 5" (ask/collect in progress flows)

    @property
    def interactive(self) -> bool:
        return self.kind in ("ask", "collect")

    def targets(self) -> Iterator[str]:
        """Step ids this step may jump to explicitly."""
        if self.next:
            yield self.next
        for c in self.choices:
            if c.next:
                yield c.next
        for b in self.branches:
            yield b.then


@dataclass
class Flow:
    id: str
    path: str
    line: int | None
    description: str = ""
    title: str | None = None  # response name: the flow's name for people
    triggers: tuple[Trigger, ...] = ()
    purpose: str = "service"  # service | marketing
    progress: bool = False
    steps: list[Step] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)

    def first(self) -> str | None:
        return self.steps[0].id if self.steps else None

    def step(self, step_id: str | None) -> Step | None:
        if step_id is None or step_id not in self.by_id:
            return None
        return self.steps[self.by_id[step_id]]

    def following(self, step: Step) -> str:
        """The step after ``step``: its ``next``, else the one below it, else the end."""
        if step.next:
            return step.next
        i = self.by_id[step.id] + 1
        return self.steps[i].id if i < len(self.steps) else END

    def counted(self) -> list[str]:
        """Ids of the steps that count in "Step n of N"."""
        if not self.progress:
            return []
        return [s.id for s in self.steps if s.progress or (s.progress is None and s.interactive)]

    def progress_of(self, step_id: str) -> tuple[int, int] | None:
        counted = self.counted()
        if step_id not in counted:
            return None
        return counted.index(step_id) + 1, len(counted)

    def responses(self) -> Iterator[tuple[str, int | None]]:
        """Every response name the flow uses, with the line that names it."""
        if self.title:
            yield self.title, self.line
        for s in self.steps:
            for name in (s.response, s.invalid):
                if name:
                    yield name, s.line
            for c in s.choices:
                yield c.title, c.line or s.line


@dataclass
class FlowBook:
    """All flows of the content folder."""

    flows: dict[str, Flow] = field(default_factory=dict)

    def get(self, flow_id: str) -> Flow | None:
        return self.flows.get(flow_id)

    def by_trigger(self, kind: str, value: str) -> list[Flow]:
        return [
            f
            for f in self.flows.values()
            for t in f.triggers
            if t.kind == kind and t.value == value
        ]

    def triggers(self, kind: str, value: str) -> list[tuple[Flow, Trigger]]:
        return [
            (f, t)
            for f in self.flows.values()
            for t in f.triggers
            if t.kind == kind and t.value == value
        ]

    def __len__(self) -> int:
        return len(self.flows)
