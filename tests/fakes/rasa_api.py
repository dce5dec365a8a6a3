"""A fake Rasa server: ``POST /model/parse`` answers one intent (``greet`` unless told), and
plays the scenarios of :class:`~tests.fakes.base.FakeServer` (``hang``: a parse that never
ends, for a turn caught in the middle by a crash)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, read_params


class FakeRasa(FakeServer):
    def __init__(self, intent: str = "greet") -> None:
        super().__init__()
        self.intent = intent
        self.app.router.add_post("/model/parse", self._parse)

    async def _parse(self, request: web.Request) -> web.StreamResponse:
        params = await read_params(request)
        sc = self._take_scenario("parse", params)
        self.record("parse", params, ok=sc is None, request=request)
        if sc is not None:
            if sc.kind == "hang":
                await self.hang(sc)
            elif sc.kind == "slow":
                await asyncio.sleep(sc.delay)
            return web.json_response({"error": sc.kind}, status=500)
        text = str(params.get("text", ""))
        answer: dict[str, Any] = {
            "text": text,
            "intent": {"name": self.intent, "confidence": 0.99},
            "entities": [],
            "intent_ranking": [{"name": self.intent, "confidence": 0.99}],
            "language": "en",
        }
        return web.json_response(answer)
