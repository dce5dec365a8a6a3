"""The one way a text's ``{placeholders}`` are filled (responses, flow texts, internal updates).

- ``{name}`` takes ``values["name"]``; ``None`` renders as nothing.
- A placeholder without a value stays as written (``{name}``), so a typo shows in the message
  instead of silently vanishing, and a warning names it in the log (once per text).
- A text that is not a valid template (a lone ``{``) is sent as it is, with a warning.
- Format specs work as in :meth:`str.format` (``{total:.2f}``); attribute and index lookups
  (``{a.b}``, ``{a[0]}``) are not filled: texts come from content files, not code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from string import Formatter
from typing import Any

log = logging.getLogger(__name__)
_FORMATTER = Formatter()


def fill(text: str, values: Mapping[str, Any]) -> str:
    """``text`` with its placeholders filled from ``values`` (see the module's rules)."""
    if "{" not in text and "}" not in text:
        return text
    out: list[str] = []
    try:
        for literal, name, spec, conversion in _FORMATTER.parse(text):
            out.append(literal)
            if name is None:
                continue
            if name not in values:
                _warn(text, name)
                out.append(
                    "{"
                    + name
                    + (f"!{conversion}" if conversion else "")
                    + (f":{spec}" if spec else "")
                    + "}"
                )
                continue
            value = values[name]
            if value is None:
                continue
            if conversion:
                value = _FORMATTER.convert_field(value, conversion)
            out.append(format(value, spec) if spec else str(value))
    except (ValueError, TypeError):
        _warn(text, "")
        return text
    return "".join(out)


@cache
def _warn(text: str, name: str) -> None:
    if name:
        log.warning("text %r: no value for {%s}; it is shown as written", text[:80], name)
    else:
        log.warning("text %r is not a valid template; it is sent as written", text[:80])
