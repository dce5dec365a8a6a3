"""Split long texts at natural boundaries so that no platform cuts them."""

from __future__ import annotations


def split_text(text: str, limit: int) -> list[str]:
    """Parts of at most ``limit`` characters, split at a paragraph, line or word boundary."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max(
            rest.rfind("\n\n", 0, limit), rest.rfind("\n", 0, limit), rest.rfind(" ", 0, limit)
        )
        if cut <= limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    parts.append(rest)
    return [p for p in parts if p] or [""]
