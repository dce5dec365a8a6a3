"""Response texts by name and language: the shop's ``responses.yml`` over built-in defaults."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.content.fill import fill
from bot.types import Button, Outbound

BUILTIN = Path(__file__).with_name("builtin_responses.yml")


@dataclass(frozen=True, slots=True)
class Variant:
    text: str
    buttons: tuple[Button, ...] = ()
    # Rasa's conditional response variations: [(slot, values it may have)], all must hold
    conditions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def fits(self, slots: Mapping[str, Any]) -> bool:
        return all(str(slots.get(name)) in values for name, values in self.conditions)


SLOTS = ("stage",)
"""Slots a response ``condition`` may name: ``stage``, the person's lifecycle stage."""


def applicable(variants: list[Variant], slots: Mapping[str, Any] | None) -> list[Variant]:
    """Rasa's rule: the conditional variants whose conditions hold, else the plain ones.
    Without slots (nobody in particular): the plain ones, or all if there are none."""
    if not any(v.conditions for v in variants):
        return variants
    plain = [v for v in variants if not v.conditions]
    if slots is None:
        return plain or variants
    return [v for v in variants if v.conditions and v.fits(slots)] or plain


def intent_title(intent: str) -> str:
    """An intent's name as a title: ``faq/return_policy`` -> ``Return policy``."""
    return intent.split("/")[-1].replace("_", " ").capitalize()


class Responses:
    """``render("utter_faq/returns", "de")`` -> an :class:`Outbound` (a random variant)."""

    def __init__(
        self,
        by_language: Mapping[str, Mapping[str, list[Variant]]],
        default_language: str = "en",
        registers: Mapping[str, str] | None = None,
    ) -> None:
        self._by_language = {lang: dict(v) for lang, v in by_language.items()}
        self.default_language = default_language
        self.registers = dict(registers or {})  # shop.yml: {"de": "formal"}
        # placeholders any text may use, computed per language when used ({support_hours})
        self.computed: dict[str, Callable[[str], str]] = {}
        builtin = self._builtin = load_builtin(BUILTIN, self.registers)
        for lang, names in builtin.items():
            mine = self._by_language.setdefault(lang, {})
            for name, variants in names.items():
                mine.setdefault(name, variants)

    def add_defaults(self, by_language: Mapping[str, Mapping[str, list[Variant]]]) -> None:
        """Texts a feature ships (e.g. ``flows/texts/``): used where the shop's
        ``responses.yml`` has no response of that name."""
        for lang, names in by_language.items():
            mine = self._by_language.setdefault(lang, {})
            for name, variants in names.items():
                if name not in mine or mine[name] is self._builtin.get(lang, {}).get(name):
                    mine[name] = variants

    @property
    def languages(self) -> list[str]:
        return sorted(self._by_language)

    def names(self, language: str) -> set[str]:
        return set(self._by_language.get(language, {}))

    def variants(
        self, name: str, language: str, slots: Mapping[str, Any] | None = None
    ) -> list[Variant]:
        """The variants for a person with these ``slots`` (``{"stage": "onboarding"}``)."""
        for lang in (language, self.default_language):
            found = self._by_language.get(lang, {}).get(name)
            if found:
                return applicable(found, slots)
        return []

    def has(self, name: str, language: str | None = None) -> bool:
        return bool(self.variants(name, language or self.default_language))

    def topic_title(
        self, intent: str, language: str, *, slots: Mapping[str, Any] | None = None
    ) -> str:
        """A button title for a topic: ``utter_ask_<intent>`` if the shop wrote one."""
        name = f"utter_ask_{intent}"
        if self.has(name, language):
            return self.text(name, language, slots=slots)
        return intent_title(intent)

    def text(
        self, name: str, language: str, *, slots: Mapping[str, Any] | None = None, **values: Any
    ) -> str:
        v = self.variants(name, language, slots)
        if not v:
            return name
        return self.fill(v[0].text, language, values)

    def render(
        self,
        name: str,
        language: str,
        *,
        rng: random.Random | None = None,
        slots: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> Outbound | None:
        v = self.variants(name, language, slots)
        if not v:
            return None
        chosen = (rng or random).choice(v)
        return Outbound(text=self.fill(chosen.text, language, values), buttons=chosen.buttons)

    def fill(self, text: str, language: str, values: Mapping[str, Any]) -> str:
        """A text's ``{placeholders}`` from the caller's values, then the computed ones
        (:attr:`computed`), by :func:`bot.content.fill.fill` (an unknown one stays as written)."""
        if "{" not in text:
            return text
        extra = {k: fn(language) for k, fn in self.computed.items() if "{" + k + "}" in text}
        return fill(text, {**extra, **values})

    @classmethod
    def from_folder(
        cls,
        nlu_data_dir: Path,
        default_language: str = "en",
        registers: Mapping[str, str] | None = None,
    ) -> Responses:
        """Read ``<dir>/<lang>/responses.yml`` for each language folder present."""
        by_language: dict[str, dict[str, list[Variant]]] = {}
        if nlu_data_dir.is_dir():
            for lang_dir in sorted(p for p in nlu_data_dir.iterdir() if p.is_dir()):
                f = lang_dir / "responses.yml"
                if f.exists():
                    data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
                    by_language[lang_dir.name] = parse_responses(data.get("responses") or {})
        return cls(by_language, default_language, registers)


def parse_responses(raw: Mapping[str, Any]) -> dict[str, list[Variant]]:
    out: dict[str, list[Variant]] = {}
    for name, variants in raw.items():
        items: Iterable[Any] = variants if isinstance(variants, list) else [variants]
        parsed = []
        for item in items:
            if isinstance(item, str):
                parsed.append(Variant(item))
            elif isinstance(item, dict) and "text" in item:
                buttons = tuple(
                    Button(
                        title=str(b["title"]),
                        payload=str(b.get("payload", b["title"])),
                        url=b.get("url"),
                    )
                    for b in item.get("buttons") or ()
                )
                parsed.append(Variant(str(item["text"]), buttons, parse_condition(item)))
        if parsed:
            out[str(name)] = parsed
    return out


def parse_condition(item: Mapping[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``condition: [{type: slot, name: stage, value: onboarding}]`` (a list of values: any
    of them). Malformed conditions are left out here; ``concierge data validate`` names them."""
    raw = item.get("condition")
    if not isinstance(raw, list):
        return ()
    out = []
    for c in raw:
        if not isinstance(c, Mapping) or c.get("type", "slot") != "slot" or "name" not in c:
            continue
        value = c.get("value")
        values = tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
        out.append((str(c["name"]), values))
    return tuple(out)


def condition_problems(item: Any, stages: Iterable[str]) -> list[str]:
    """What is wrong with a variant's ``condition`` (for ``concierge data validate``)."""
    if not isinstance(item, Mapping) or "condition" not in item:
        return []
    raw = item["condition"]
    if not isinstance(raw, list) or not raw:
        return ["condition: a list of {type: slot, name: stage, value: ...}"]
    known = set(stages)
    out = []
    for c in raw:
        if not isinstance(c, Mapping) or c.get("type") != "slot":
            out.append("a condition is {type: slot, name: ..., value: ...}")
            continue
        name = c.get("name")
        if name not in SLOTS:
            out.append(f"unknown slot {name!r} in a condition (slots: {', '.join(SLOTS)})")
            continue
        value = c.get("value")
        for v in value if isinstance(value, list) else [value]:
            if name == "stage" and str(v) not in known:
                out.append(
                    f"unknown stage {v!r} in a condition (stages: {', '.join(sorted(known))})"
                )
    return out


def load_builtin(
    path: Path, registers: Mapping[str, str] | None = None
) -> dict[str, dict[str, list[Variant]]]:
    """A built-in texts file (``name: {lang: text}``). A ``<lang>@<register>`` text replaces
    the plain ``<lang>`` one where the shop chose that register (shop.yml ``languages``)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))["responses"]
    registers = registers or {}
    out: dict[str, dict[str, list[Variant]]] = {}
    for name, by_lang in data.items():
        for key, text in by_lang.items():
            lang, _, register = str(key).partition("@")
            if register and registers.get(lang) != register:
                continue
            if not register and name in out.get(lang, {}) and registers.get(lang):
                continue  # the register's text came first
            out.setdefault(lang, {})[name] = [Variant(str(text))]
    return out
