"""After "None of these" and a second unsure turn offer a person, or an e-mail when nobody is in
(issue 23): the whole product over a real WebSocket, in the visitor's language."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import websockets

from bot.settings import Settings
from tests.conftest import LiveServer

Frame = dict[str, Any]
CEZVE_DE = "Könnt ihr Bohnen für eine Cezve mahlen und unser Logo drucken?"
CEZVE_EN = "Can you grind beans for a cezve and print our logo on the bags?"


class Visitor:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.n = 0

    async def say(self, text: str) -> None:
        self.n += 1
        await self.ws.send(json.dumps({"type": "message", "text": text, "client_id": f"c{self.n}"}))

    async def press(self, button: Frame) -> None:
        self.n += 1
        await self.ws.send(
            json.dumps(
                {
                    "type": "button",
                    "payload": button["payload"],
                    "title": button["title"],
                    "client_id": f"c{self.n}",
                }
            )
        )

    async def next_bot(self, timeout: float = 15) -> Frame:
        async def go() -> Frame:
            while True:
                f = json.loads(await self.ws.recv())
                if f["type"] == "message" and f["sender"] != "user":
                    return dict(f)

        return await asyncio.wait_for(go(), timeout)


def button(frame: Frame, title: str) -> Frame:
    found = [b for b in frame["buttons"] if b["title"] == title]
    assert found, f"no button {title!r} in {frame['buttons']}"
    return dict(found[0])


async def test_none_of_these_offers_a_person_in_german_and_leads_to_one(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> None:
    server = start_server(
        make_settings(db_url, admin_password="pw", handoff_hours="mon-sun 00:00-23:59")
    )
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/chat?lang=de") as ws:
        v = Visitor(ws)
        await v.say(CEZVE_DE)
        clarify = await v.next_bot()
        await v.press(button(clarify, "Nichts davon"))
        offer = await v.next_bot()
        assert "Team" in offer["text"]
        await v.press(button(offer, "Mit einem Menschen sprechen"))
        started = await v.next_bot()
        assert "Team" in started["text"] and "Minuten" in started["text"]


async def test_second_unsure_turn_off_hours_offers_an_email(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> None:
    # the team is never in now (one minute a week): the visitor can leave an e-mail address
    server = start_server(
        make_settings(db_url, admin_password="pw", handoff_hours="mon 03:00-03:01")
    )
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/chat?lang=en") as ws:
        v = Visitor(ws)
        await v.say(CEZVE_EN)
        await v.next_bot()  # "Did you mean one of these?"
        await v.say("and what about the blue thing with the stuff")
        offer = await v.next_bot()
        assert "away right now" in offer["text"]
        assert any(f"{d} at 03:00" in offer["text"] for d in ("on Monday", "today", "tomorrow"))
        await v.press(button(offer, "Leave my email"))
        assert "email address" in (await v.next_bot())["text"]
        await v.say("it is anna@example.org")
        assert "anna@example.org" in (await v.next_bot())["text"]
