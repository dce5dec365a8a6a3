"""Checking a collected answer: ``validate: email`` etc. Returns the cleaned value or None."""

from __future__ import annotations

import re
from datetime import date

from bot.flows.model import CollectStep

EMAIL = re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)*\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+?[\d\s()./-]{6,24}$")
_DATE_DMY = re.compile(r"^(\d{1,2})[./](\d{1,2})[./](\d{4})$")
MAX_TEXT = 500


def check(step: CollectStep, text: str) -> str | None:
    value = text.strip()
    if not value or len(value) > MAX_TEXT:
        return None
    kind, pattern, options = step.validation
    if kind == "text":
        return value
    if kind == "email":
        value = value.strip("<>").strip()
        return value.lower() if EMAIL.match(value) else None
    if kind == "phone":
        digits = re.sub(r"\D", "", value)
        return value if PHONE.match(value) and 6 <= len(digits) <= 15 else None
    if kind in ("number", "integer"):
        cleaned = value.replace(" ", "").replace(",", ".")
        try:
            num = float(cleaned)
        except ValueError:
            return None
        if kind == "integer":
            return str(int(num)) if num.is_integer() else None
        return cleaned
    if kind == "date":
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            m = _DATE_DMY.match(value)
            if not m:
                return None
            try:
                return date(int(m.group(3)), int(m.group(2)), int(m.group(1))).isoformat()
            except ValueError:
                return None
    if kind == "regex":
        return value if pattern and re.fullmatch(pattern, value) else None
    if kind == "choice":
        folded = value.casefold()
        for option in options:
            if option.casefold() == folded:
                return option
        return None
    return None
