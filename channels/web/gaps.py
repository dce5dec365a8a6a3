"""FAQ gaps (placeholder until the page lands)."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from bot.runtime import Runtime


def routes(runtime: Runtime, guard: Any) -> list[BaseRoute]:
    return []
