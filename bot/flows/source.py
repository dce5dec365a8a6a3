"""YAML content with line numbers, so every problem names ``file:line``.

``Doc.load(path)`` parses a file once; ``doc.data`` is the plain Python value and
``doc.line(("flows", "onboarding", "steps", 2))`` the line where that part starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]

# libyaml when installed (ten times faster); its nodes carry line numbers too
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ContentError(Exception):
    """A problem in a content file: ``file:line: problem``."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = str(path), line, problem
        super().__init__(f"{self.path}:{line}: {problem}" if line else f"{self.path}: {problem}")


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
            raise ContentError(path, None, f"cannot read: {e}") from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: Path) -> Doc:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark else None
            problem = " ".join(p for p in (e.context, e.problem) if p) or "invalid YAML"
            raise ContentError(path, line, f"YAML syntax: {problem}") from None
        except yaml.YAMLError as e:
            raise ContentError(path, None, f"YAML syntax: {e}") from None
        finally:
            loader.dispose()
        doc = cls(path, data)
        if node is not None:
            doc._index(node, ())
        return doc

    def _index(self, node: yaml.Node, at: PathKey) -> None:
        self.lines[at] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.start_mark.line)
                self.lines[(*at, key, "__key__")] = k.start_mark.line + 1
                self._index(v, (*at, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._index(v, (*at, i))

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

    def error(self, at: PathKey, problem: str) -> ContentError:
        return ContentError(self.path, self.line(at), problem)

    def problem(self, at: PathKey, message: str, severity: str = "error") -> Problem:
        return Problem(str(self.path), self.line(at), message, severity)


def parse_duration(value: Any) -> timedelta:
    """``"7d"``, ``"36h"``, ``"90m"``, ``"2w"``, ``"30s"`` -> :class:`timedelta`.

    A bare number is a number of days. Raises :class:`ValueError` with a hint."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r} (use e.g. 3d, 12h, 30m, 2w)")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return timedelta(days=value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 3d, 12h, 30m, 2w)")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def duration_text(d: timedelta) -> str:
    s = int(d.total_seconds())
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def walk_files(folder: Path, pattern: str = "*.yml") -> Iterator[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.glob(pattern) if p.is_file())
