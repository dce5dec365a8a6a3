"""``concierge data validate``: every problem in the content, as ``file:line: message``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.nlu.data import FAQ_PREFIX, ContentError, language_folders, load_nlu_file
from bot.nlu.text import fold


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


def _response_lines(path: Path) -> tuple[dict[str, int], list[Problem]]:
    """Response names with their line numbers."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        return {}, [
            Problem(str(path), mark.line + 1 if mark else None, f"invalid YAML: {e.problem}")
        ]
    names: dict[str, int] = {}
    if node is None or not isinstance(node, yaml.MappingNode):
        return names, [Problem(str(path), 1, "expected a mapping with 'responses:'")]
    for k, v in node.value:
        if k.value == "responses" and isinstance(v, yaml.MappingNode):
            for rk, rv in v.value:
                names[str(rk.value)] = rk.start_mark.line + 1
                if not isinstance(rv, yaml.SequenceNode) or not rv.value:
                    problems = [
                        Problem(
                            str(path),
                            rk.start_mark.line + 1,
                            f"response {rk.value!r} needs a list of variants",
                        )
                    ]
                    return names, problems
    return names, []


def validate(content: Path) -> list[Problem]:
    problems: list[Problem] = []
    folders = language_folders(content)
    if not folders:
        return [Problem(str(content), None, "no <lang>/nlu.yml found")]
    intents_by_lang: dict[str, set[str]] = {}
    responses_by_lang: dict[str, dict[str, int]] = {}
    for lang, folder in folders.items():
        seen: dict[str, tuple[str, str, int]] = {}
        intents: set[str] = set()
        for f in sorted(folder.glob("*.yml")):
            if f.name == "responses.yml":
                continue
            try:
                data = load_nlu_file(f, lang)
            except ContentError as e:
                problems.append(Problem(e.file, e.line, e.message))
                continue
            for ex in data.examples:
                intents.add(ex.intent)
                key = fold(ex.text)
                if key in seen:
                    other_intent, other_file, other_line = seen[key]
                    if other_intent == ex.intent:
                        problems.append(
                            Problem(
                                ex.file,
                                ex.line,
                                f"duplicate example {ex.text!r} (also at line {other_line})",
                                "warning",
                            )
                        )
                    else:
                        problems.append(
                            Problem(
                                ex.file,
                                ex.line,
                                f"example {ex.text!r} is under {ex.intent!r} and {other_intent!r} ({other_file}:{other_line})",
                            )
                        )
                else:
                    seen[key] = (ex.intent, ex.file, ex.line)
        intents_by_lang[lang] = intents
        rfile = folder / "responses.yml"
        if rfile.exists():
            names, rproblems = _response_lines(rfile)
            problems += rproblems
            responses_by_lang[lang] = names
        else:
            responses_by_lang[lang] = {}
        for intent in sorted(intents):
            if intent.startswith(FAQ_PREFIX) and f"utter_{intent}" not in responses_by_lang[lang]:
                problems.append(
                    Problem(
                        str(rfile),
                        None,
                        f"FAQ topic {intent!r} has no response 'utter_{intent}' in {lang}",
                    )
                )
    all_intents = set().union(*intents_by_lang.values())
    for lang, intents in intents_by_lang.items():
        for missing in sorted(all_intents - intents):
            problems.append(
                Problem(
                    str(folders[lang] / "nlu.yml"),
                    None,
                    f"intent {missing!r} has no examples in {lang}",
                    "warning",
                )
            )
    problems += _shop_problems(content)
    problems += _condition_problems(content, folders)
    all_responses = set().union(*(set(r) for r in responses_by_lang.values()))
    for lang, names in responses_by_lang.items():
        for missing in sorted(all_responses - set(names)):
            problems.append(
                Problem(
                    str(folders[lang] / "responses.yml"),
                    None,
                    f"response {missing!r} is missing in {lang}",
                    "warning",
                )
            )
    return problems


def _shop_problems(content: Path) -> list[Problem]:
    """shop.yml, and answers that state other support hours than it (issue 23)."""
    from bot.settings import Settings
    from bot.shop import ShopError, hours_problems, load_shop, support_hours

    root = content if (content / "nlu_data").is_dir() else content.parent
    try:
        shop = load_shop(root)
    except ShopError as e:
        return [Problem(e.file, e.line, e.message)]
    try:
        settings = Settings()
        hours = support_hours(shop, settings)
    except Exception as e:  # invalid settings: reported where the settings are read
        return [Problem(str(root / "shop.yml"), None, f"support hours: {e}", "warning")]
    return [Problem(f, line, msg, "warning") for f, line, msg in hours_problems(root, shop, hours)]


def _condition_problems(content: Path, folders: dict[str, Path]) -> list[Problem]:
    """Response variants with a ``condition`` (Rasa's conditional variations): the slot must be
    one the engine fills (``stage``) and the stage one of flows/lifecycle.yml's."""
    from bot.lifecycle.config import find, load
    from bot.responses import condition_problems

    root = content if (content / "nlu_data").is_dir() else content.parent
    try:
        stages = list(load(find(root)).stages)
    except Exception:  # reported by `concierge flows validate`
        return []
    out: list[Problem] = []
    for folder in folders.values():
        f = folder / "responses.yml"
        if not f.exists():
            continue
        try:
            node = yaml.compose(f.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            continue  # reported with its line by _response_lines
        if not isinstance(node, yaml.MappingNode):
            continue
        for k, v in node.value:
            if k.value != "responses" or not isinstance(v, yaml.MappingNode):
                continue
            for rk, rv in v.value:
                if not isinstance(rv, yaml.SequenceNode):
                    continue
                for item in rv.value:
                    data = yaml.safe_load(yaml.serialize(item))
                    for message in condition_problems(data, stages):
                        line = item.start_mark.line + 1
                        if isinstance(item, yaml.MappingNode):
                            line = next(
                                (
                                    ik.start_mark.line + 1
                                    for ik, _ in item.value
                                    if ik.value == "condition"
                                ),
                                line,
                            )
                        out.append(Problem(str(f), line, f"{rk.value}: {message}"))
    return out
