"""Flow texts: ``flows/texts/<lang>.yml``, Rasa-style ``responses:`` like ``responses.yml``.

They are kept apart from ``nlu_data/<lang>/responses.yml`` so that flows and their words travel
together; a response of the same name in ``responses.yml`` wins (the shop overrides a text
without touching the flow files).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.content.loader import ContentError, Doc, Problem, walk_files
from bot.responses import Variant, load_builtin, parse_responses

TEXTS_DIR = "texts"
BUILTIN = Path(__file__).with_name("builtin_texts.yml")


def builtin_texts(
    registers: Mapping[str, str] | None = None,
) -> dict[str, dict[str, list[Variant]]]:
    """The runner's own texts (progress, pause, buttons...) in the shipped languages, in the
    shop's register per language (shop.yml)."""
    return load_builtin(BUILTIN, registers)


def load_texts(
    flows_dir: Path, registers: Mapping[str, str] | None = None
) -> tuple[dict[str, dict[str, list[Variant]]], list[Problem]]:
    """``{lang: {name: variants}}`` and the problems found (file:line)."""
    out = builtin_texts(registers)
    problems: list[Problem] = []
    for path in walk_files(flows_dir / TEXTS_DIR):
        lang = path.stem
        try:
            doc = Doc.load(path)
        except ContentError as e:
            problems.append(e.as_problem())
            continue
        data = doc.data or {}
        if not isinstance(data, Mapping) or not isinstance(data.get("responses"), Mapping):
            problems.append(doc.problem((), "a texts file is a mapping with 'responses:'"))
            continue
        raw: Mapping[str, Any] = data["responses"]
        for name, variants in raw.items():
            items = variants if isinstance(variants, list) else [variants]
            for i, v in enumerate(items):
                if not (isinstance(v, str) or (isinstance(v, Mapping) and "text" in v)):
                    problems.append(
                        doc.problem(
                            ("responses", name, i),
                            f"response {name!r}: a variant is text or {{text: ..., buttons: [...]}}",
                        )
                    )
        out.setdefault(lang, {}).update(parse_responses(raw))
    return out, problems


def response_lines(flows_dir: Path) -> dict[str, dict[str, tuple[str, int | None]]]:
    """``{lang: {name: (file, line)}}`` of the texts files (for validation messages)."""
    out: dict[str, dict[str, tuple[str, int | None]]] = {}
    for path in walk_files(flows_dir / TEXTS_DIR):
        try:
            doc = Doc.load(path)
        except ContentError:
            continue
        data = doc.data or {}
        if isinstance(data, Mapping) and isinstance(data.get("responses"), Mapping):
            out[path.stem] = {
                str(n): (str(path), doc.key_line(("responses", n))) for n in data["responses"]
            }
    return out
