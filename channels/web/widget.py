"""The chat widget's script, with its labels in every language the shop serves.

``static/widget.js`` carries English labels between ``/*TEXTS*/`` and ``/*END TEXTS*/``; the
server replaces them with the texts of the ``utter_widget_*`` responses (built in for the
shipped languages, ``bot/builtin_responses.yml``; a shop words them its own way, or adds a
language, in its ``responses.yml``; the register of ``shop.yml`` applies), so a language is
added in one place for the bot and the widget alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from bot.responses import Responses

SCRIPT = Path(__file__).resolve().parent / "static" / "widget.js"
LABELS = (
    "title open close unread placeholder send offline too_long staff failed retry you bot replies"
).split()
_TEXTS = re.compile(r"/\*TEXTS\*/.*?/\*END TEXTS\*/", re.S)


def labels(responses: Responses, language: str) -> dict[str, str]:
    """The widget's labels in ``language`` (a label the language lacks: the default
    language's). ``{n}`` stays for the widget to fill in."""
    out = {}
    for key in LABELS:
        variants = responses.variants(f"utter_widget_{key}", language)
        out[key] = variants[0].text if variants else key
    return out


def script(responses: Responses, languages: Iterable[str], default: str) -> str:
    """``widget.js`` with the labels of ``languages``; a visitor in another language gets the
    ``default`` language's."""
    texts = {lang: labels(responses, lang) for lang in dict.fromkeys([default, *languages])}
    data = json.dumps({"default": default, "texts": texts}, ensure_ascii=False)
    source = SCRIPT.read_text(encoding="utf-8")
    return _TEXTS.sub(lambda _: data, source, count=1)
