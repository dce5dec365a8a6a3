"""YAML content with line numbers, so every problem names ``file:line``.

``Doc.load(path)`` parses a file once; ``doc.data`` is the plain Python value and
``doc.line(("flows", "onboarding", "steps", 2))`` the line where that part starts.
``doc.validate(Model, at)`` checks a part against a Pydantic model and reports the first
problem as ``file:line: field.path: message``.

Every content file reads the same YAML: a duplicate key is an error, and dates and times
stay text (``2026-13-01`` is a string the caller checks, ``10:00`` is not YAML 1.1's
sexagesimal 600).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

PathKey = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


# libyaml when installed (ten times faster); its nodes carry line numbers too
_Loader: type[yaml.SafeLoader] = type(
    "_Loader", (getattr(yaml, "CSafeLoader", yaml.SafeLoader),), {}
)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(  # YAML 1.1 numbers without the sexagesimal forms
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
        r"|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


class ContentError(ValueError):
    """A problem in a content file: ``file:line: problem`` (the one error type of content)."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = str(path), line, problem
        super().__init__(f"{self.path}:{line}: {problem}" if line else f"{self.path}: {problem}")

    def as_problem(self, severity: str = "error") -> Problem:
        return Problem(self.path, self.line, self.problem, severity)


class FieldError(ValueError):
    """Raised by a model's validator whose message names the field itself (``next: a step id
    or 'end', not 'x'``): it stands as written, without the field path before it. ``at``: the
    part below the field it is about (``set: {attributes.x: [1]}``: ``("attributes.x",)``)."""

    def __init__(self, message: str, at: PathKey = ()) -> None:
        super().__init__(message)
        self.at = at


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of a content check (``severity``: error | warning)."""

    path: str
    line: int | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


@dataclass
class Doc:
    path: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Doc:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else e
            raise ContentError(path, None, f"cannot read: {reason}") from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: Path, offset: int = 0) -> Doc:
        """``offset``: lines before ``text`` in the file (YAML front matter of Markdown)."""
        node = compose(text, path, offset)
        if node is None:
            return cls(path, None)
        doc = cls(path, _Loader("").construct_document(node))
        doc._index(node, (), offset + 1)
        return doc

    def _index(self, node: yaml.Node, at: PathKey, base: int) -> None:
        self.lines[at] = node.start_mark.line + base
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.start_mark.line)
                if key in seen:
                    raise ContentError(
                        self.path, k.start_mark.line + base, f"duplicate key {key!r}"
                    )
                seen.add(key)
                self.lines[(*at, key, "__key__")] = k.start_mark.line + base
                self._index(v, (*at, key), base)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._index(v, (*at, i), base)

    def line(self, at: PathKey) -> int | None:
        """The line of ``at`` (or of its nearest enclosing part)."""
        at = tuple(str(p) if not isinstance(p, int) else p for p in at)
        while at:
            key = (*at, "__key__")  # a mapping entry: where its key is
            if key in self.lines:
                return self.lines[key]
            if at in self.lines:
                return self.lines[at]
            at = at[:-1]
        return self.lines.get((), 1)

    def key_line(self, at: PathKey) -> int | None:
        """The line of the key that holds ``at`` (a mapping entry)."""
        return self.lines.get((*at, "__key__")) or self.line(at)

    def get(self, at: PathKey) -> Any:
        """The part of ``data`` at ``at`` (``None`` when absent)."""
        value = self.data
        for p in at:
            try:
                value = value[p]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    def error(self, at: PathKey, problem: str) -> ContentError:
        return ContentError(self.path, self.line(at), problem)

    def problem(self, at: PathKey, message: str, severity: str = "error") -> Problem:
        return Problem(str(self.path), self.line(at), message, severity)

    def validate(
        self, model: type[M], at: PathKey = (), data: Any = None, *, context: Any = None
    ) -> M:
        """The part at ``at`` (or ``data`` found there) as a ``model``; the first problem as a
        :class:`ContentError` naming its line and field path (``prompts.2.delay: ...``).
        ``context``: the models' validation context."""
        data = self.get(at) if data is None else data
        return validate(model, data, self.path, self.line, at, context=context)


def validate(
    model: type[M],
    data: Any,
    path: Path,
    line_of: Callable[[PathKey], int | None],
    at: PathKey = (),
    *,
    context: Any = None,
) -> M:
    """``data`` as a ``model``; the first problem as ``file:line: field.path: message``, the
    line from ``line_of(field path)``. A :class:`ContentError` a validator raised (a part it
    validated itself) stands as it is."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as e:
        first = e.errors()[0]
        loc: PathKey = tuple(first["loc"])
        where = (*at, *loc)
        dotted = ".".join(str(p) for p in where)
        stated = first.get("ctx", {}).get("error")
        if isinstance(stated, ContentError):
            raise stated from None
        if isinstance(stated, FieldError):
            raise ContentError(path, line_of((*where, *stated.at)), str(stated)) from None
        if first["type"] == "missing":
            message = f"{str(loc[-1])!r} is missing"
        elif first["type"] == "extra_forbidden":
            message = f"{dotted}: unknown key {str(loc[-1])!r}"
        else:
            message = first["msg"].removeprefix("Value error, ")
            message = f"{dotted}: {message}" if dotted else message
        raise ContentError(path, line_of(where), message) from None


def compose(text: str, path: Path, offset: int = 0) -> yaml.Node | None:
    """The node tree of ``text`` (for the few checks that need a scalar's style)."""
    loader = _Loader(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 + offset if mark else None
        problem = " ".join(p for p in (e.context, e.problem) if p) or "invalid YAML"
        raise ContentError(path, line, f"YAML syntax: {problem}") from None
    except yaml.YAMLError as e:
        raise ContentError(path, None, f"YAML syntax: {e}") from None
    finally:
        loader.dispose()


def walk_files(folder: Path, pattern: str = "*.yml") -> Iterator[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.glob(pattern) if p.is_file())
