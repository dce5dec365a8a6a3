"""Rasa 3.x training data: ``nlu.yml`` (intents, entities, synonyms, regexes, lookups).

Every example keeps its file and line, so that every problem is reported as ``file:line``.
A content folder holds one folder per language: ``<dir>/<lang>/nlu.yml``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.content.loader import ContentError as ContentError  # re-exported: the nlu CLI
from bot.content.loader import compose
from bot.nlu.text import fold

FAQ_PREFIX = "faq/"
_ENTITY = re.compile(
    r"\[(?P<text>[^\]]+)\]"
    r"(?:\((?P<name>[^)]+)\)|(?P<json>\{[^}]*\}))"
)


@dataclass(frozen=True, slots=True)
class Entity:
    entity: str
    start: int
    end: int
    value: str
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: str
    language: str
    file: str = ""
    line: int = 0
    entities: tuple[Entity, ...] = ()


@dataclass
class TrainingData:
    """One language's (or a single file's) training data."""

    language: str
    examples: list[Example] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)  # folded text -> value
    regexes: dict[str, list[str]] = field(default_factory=dict)  # entity -> patterns
    lookups: dict[str, list[str]] = field(default_factory=dict)  # entity -> values
    files: list[str] = field(default_factory=list)

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})

    def merge(self, other: TrainingData) -> None:
        self.examples.extend(other.examples)
        self.synonyms.update(other.synonyms)
        for k, v in other.regexes.items():
            self.regexes.setdefault(k, []).extend(v)
        for k, v in other.lookups.items():
            self.lookups.setdefault(k, []).extend(v)
        self.files.extend(other.files)


def parse_annotated(text: str) -> tuple[str, tuple[Entity, ...]]:
    """``"ship to [Oslo](city)"`` -> ``("ship to Oslo", (Entity("city", 8, 12, "Oslo"),))``.

    Both Rasa forms: ``[text](entity)`` / ``[text](entity:value)`` and
    ``[text]{"entity": "...", "value": "...", "role": "...", "group": "..."}``.
    Raises ``ValueError`` for a malformed annotation.
    """
    out: list[str] = []
    entities: list[Entity] = []
    pos = 0
    plain_len = 0
    for m in _ENTITY.finditer(text):
        out.append(text[pos : m.start()])
        plain_len += m.start() - pos
        span = m.group("text")
        if m.group("name") is not None:
            name, _, value = m.group("name").partition(":")
            name = name.strip()
            value = value.strip() or span
            role = group = None
        else:
            try:
                spec = json.loads(m.group("json"))
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"entity annotation {m.group(0)!r} is not valid JSON: {e.msg}"
                ) from None
            if not isinstance(spec, dict) or not isinstance(spec.get("entity"), str):
                raise ValueError(f'entity annotation {m.group(0)!r} needs an "entity" name')
            name = spec["entity"]
            value = str(spec.get("value", span))
            role, group = spec.get("role"), spec.get("group")
        if not name:
            raise ValueError(f"entity annotation {m.group(0)!r} has no entity name")
        entities.append(Entity(name, plain_len, plain_len + len(span), value, role, group))
        out.append(span)
        plain_len += len(span)
        pos = m.end()
    out.append(text[pos:])
    plain = "".join(out)
    if re.search(r"\]\(|\]\{", plain):
        raise ValueError("unbalanced entity annotation")
    return plain, tuple(entities)


def _compose(path: Path) -> Node | None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ContentError(path, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    return compose(text, path)


def _scalar(node: Node) -> str:
    return str(node.value) if isinstance(node, ScalarNode) else ""


def _mapping(node: Node) -> Iterator[tuple[str, Node, Node]]:
    if isinstance(node, MappingNode):
        for k, v in node.value:
            yield _scalar(k), k, v


def _examples_block(node: Node, path: Path) -> Iterator[tuple[str, int]]:
    """Lines of an ``examples: |`` block (or a YAML list) with their file line numbers."""
    if isinstance(node, SequenceNode):  # examples as a list of strings or {text: ...}
        for item in node.value:
            if isinstance(item, ScalarNode):
                yield str(item.value), item.start_mark.line + 1
            elif isinstance(item, MappingNode):
                for key, _, v in _mapping(item):
                    if key == "text":
                        yield _scalar(v), v.start_mark.line + 1
        return
    if not isinstance(node, ScalarNode):
        raise ContentError(path, node.start_mark.line + 1, "examples must be a block of '- ' lines")
    first = node.start_mark.line + 1
    if node.style == "|":  # literal block: content starts on the next line
        first += 1
    for i, raw in enumerate(str(node.value).splitlines()):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("-"):
            raise ContentError(path, first + i, f"an example line must start with '- ': {line!r}")
        yield line[1:].strip(), first + i


def load_nlu_file(path: Path, language: str) -> TrainingData:
    """Parse one Rasa ``nlu.yml``; raises :class:`ContentError` with file and line."""
    root = _compose(path)
    data = TrainingData(language=language, files=[str(path)])
    if root is None:
        return data
    if not isinstance(root, MappingNode):
        raise ContentError(path, root.start_mark.line + 1, "expected a mapping with 'nlu:'")
    for key, knode, value in _mapping(root):
        if key == "version":
            continue
        if key != "nlu":
            if key in ("responses", "stories", "rules"):
                continue  # other Rasa sections may share the file
            raise ContentError(path, knode.start_mark.line + 1, f"unknown top-level key {key!r}")
        if not isinstance(value, SequenceNode):
            raise ContentError(path, value.start_mark.line + 1, "'nlu:' must be a list")
        for item in value.value:
            _nlu_item(item, path, data)
    return data


def _nlu_item(item: Node, path: Path, data: TrainingData) -> None:
    line = item.start_mark.line + 1
    fields = {k: v for k, _, v in _mapping(item)}
    if not fields:
        raise ContentError(path, line, "each 'nlu:' entry is a mapping (intent, synonym, ...)")
    kinds = [k for k in ("intent", "synonym", "regex", "lookup") if k in fields]
    if len(kinds) != 1:
        raise ContentError(
            path, line, "each entry needs exactly one of intent, synonym, regex, lookup"
        )
    kind = kinds[0]
    name = _scalar(fields[kind]).strip()
    if not name:
        raise ContentError(path, line, f"{kind} name is empty")
    unknown = set(fields) - {kind, "examples", "metadata"}
    if unknown:
        raise ContentError(path, line, f"unknown key(s) {sorted(unknown)} in {kind} {name!r}")
    if "examples" not in fields:
        raise ContentError(path, line, f"{kind} {name!r} has no examples")
    lines = list(_examples_block(fields["examples"], path))
    if kind == "intent":
        for text, ln in lines:
            try:
                plain, entities = parse_annotated(text)
            except ValueError as e:
                raise ContentError(path, ln, str(e)) from None
            if plain.strip():
                data.examples.append(
                    Example(plain.strip(), name, data.language, str(path), ln, entities)
                )
            for ent in entities:
                span = plain[ent.start : ent.end]
                if ent.value != span:
                    data.synonyms[fold(span)] = ent.value
    elif kind == "synonym":
        for text, _ in lines:
            data.synonyms[fold(text)] = name
    elif kind == "regex":
        for text, ln in lines:
            try:
                re.compile(text)
            except re.error as e:
                raise ContentError(path, ln, f"regex {text!r} does not compile: {e}") from None
            data.regexes.setdefault(name, []).append(text)
    else:
        for text, _ in lines:
            data.lookups.setdefault(name, []).append(text)


def language_folders(content: Path) -> dict[str, Path]:
    """``{lang: folder}`` for ``<content>/<lang>/nlu.yml`` (``content`` may be nlu_data/ or
    its parent)."""
    base = content / "nlu_data" if (content / "nlu_data").is_dir() else content
    if not base.is_dir():
        return {}
    return {p.name: p for p in sorted(base.iterdir()) if p.is_dir() and (p / "nlu.yml").exists()}


def load_content(path: Path, default_language: str = "en") -> dict[str, TrainingData]:
    """All languages' training data from a content folder, or one ``nlu.yml`` file."""
    if path.is_file():
        lang = path.parent.name if len(path.parent.name) <= 5 else default_language
        return {lang: load_nlu_file(path, lang)}
    folders = language_folders(path)
    if not folders:
        raise ContentError(path, None, "no <lang>/nlu.yml found")
    out: dict[str, TrainingData] = {}
    for lang, folder in folders.items():
        data = TrainingData(language=lang)
        for f in sorted(folder.glob("*.yml")):
            if f.name == "responses.yml":
                continue
            data.merge(load_nlu_file(f, lang))
        out[lang] = data
    return out


def as_dict(data: TrainingData) -> dict[str, Any]:
    return {
        "language": data.language,
        "intents": data.intents,
        "examples": len(data.examples),
        "synonyms": len(data.synonyms),
        "regexes": sorted(data.regexes),
        "lookups": sorted(data.lookups),
    }
