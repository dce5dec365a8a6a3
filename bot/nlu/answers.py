"""The answers of ``responses.yml``: read beside the training files, and cut into sentences
(the NLU learns from them as extra, down-weighted examples of their intents)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.nlu.data import TrainingData

RESPONSE_FILE = "responses.yml"
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def load_responses(path: Path) -> dict[str, list[str]]:
    """``{intent: [answer text]}`` from a Rasa ``responses.yml``: ``utter_faq/x`` answers
    ``faq/x``, ``utter_greet`` answers ``greet``; an unreadable file gives nothing."""
    try:
        root = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    found = root.get("responses") if isinstance(root, dict) else None
    out: dict[str, list[str]] = {}
    for key, variants in (found or {}).items():
        if (
            not isinstance(key, str)
            or not key.startswith("utter_")
            or not isinstance(variants, list)
        ):
            continue
        texts = [
            v["text"] for v in variants if isinstance(v, dict) and isinstance(v.get("text"), str)
        ]
        if texts:
            out.setdefault(key.removeprefix("utter_"), []).extend(texts)
    return out


def find_responses(data: TrainingData) -> dict[str, list[str]]:
    """The answers in the ``responses.yml`` beside the training files of ``data``."""
    out: dict[str, list[str]] = {}
    for folder in sorted({Path(f).parent for f in data.files}):
        for intent, texts in load_responses(folder / RESPONSE_FILE).items():
            out.setdefault(intent, []).extend(texts)
    return out


def answer_parts(text: str) -> list[str]:
    """An answer and, when it has several, each of its sentences."""
    parts = [p for p in _SENTENCE_END.split(text.strip()) if p]
    return [text, *parts] if len(parts) > 1 else [text]
