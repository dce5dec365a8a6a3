"""``concierge data validate``: every problem in the content, as ``file:line: message``."""

from __future__ import annotations

from pathlib import Path

from bot.content.loader import ContentError, Doc, Problem
from bot.nlu.data import FAQ_PREFIX, language_folders, load_nlu_file
from bot.nlu.text import fold


def _response_lines(path: Path) -> tuple[dict[str, int], list[Problem]]:
    """Response names with their line numbers."""
    try:
        doc = Doc.load(path)
    except ContentError as e:
        return {}, [e.as_problem()]
    if not isinstance(doc.data, dict):
        return {}, [Problem(str(path), 1, "expected a mapping with 'responses:'")]
    responses = doc.data.get("responses")
    if not isinstance(responses, dict):
        return {}, []
    names: dict[str, int] = {}
    for name, variants in responses.items():
        names[str(name)] = doc.key_line(("responses", str(name))) or 1
        if not isinstance(variants, list) or not variants:
            message = f"response {name!r} needs a list of variants"
            return names, [doc.problem(("responses", str(name)), message)]
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
                problems.append(e.as_problem())
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
    from bot.shop import hours_problems, load_shop, support_hours

    root = content if (content / "nlu_data").is_dir() else content.parent
    try:
        shop = load_shop(root)
    except ContentError as e:
        return [e.as_problem()]
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
            doc = Doc.load(f)
        except ContentError:
            continue  # reported with its line by _response_lines
        responses = doc.get(("responses",))
        if not isinstance(responses, dict):
            continue
        for name, variants in responses.items():
            for i, item in enumerate(variants if isinstance(variants, list) else []):
                for message in condition_problems(item, stages):
                    at = ("responses", str(name), i)
                    line = doc.line((*at, "condition") if isinstance(item, dict) else at)
                    out.append(Problem(str(f), line, f"{name}: {message}"))
    return out
