"""Every message gets a reply during a handoff (issue 23): the whole product over a real
WebSocket, staff in a Slack thread (the fake Slack API, signed requests)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websockets

from bot.settings import Settings
from tests.auxil.build_messages import slack_block_action
from tests.conftest import LiveServer
from tests.fakes.slack_api import FakeSlack, send_action

SECRET = "sig"
STAFF = "CSTAFF"
Frame = dict[str, Any]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    sl = FakeSlack().start()
    sl.users["UANNA"] = {"id": "UANNA", "name": "anna", "real_name": "Anna", "profile": {}}
    yield sl
    sl.stop()


def start(
    start_server: Callable[..., LiveServer],
    make_settings: Callable[..., Settings],
    db_url: str,
    sl: FakeSlack,
    **extra: Any,
) -> LiveServer:
    return start_server(
        make_settings(
            db_url,
            slack_bot_token="xoxb-t",
            slack_signing_secret=SECRET,
            slack_api_url=sl.api_url,
            slack_staff_channel=STAFF,
            **({"handoff_hours": "mon-sun 00:00-23:59"} | extra),
        )
    )


class Visitor:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.n = 0

    async def say(self, text: str, lang: str | None = None) -> None:
        self.n += 1
        await self.ws.send(json.dumps({"type": "message", "text": text, "client_id": f"c{self.n}"}))

    async def next_bot(self, timeout: float = 15) -> Frame:
        async def go() -> Frame:
            while True:
                f = json.loads(await self.ws.recv())
                if f["type"] == "message" and f["sender"] != "user":
                    return dict(f)

        return await asyncio.wait_for(go(), timeout)


async def test_waiting_visitor_gets_answers_and_stop_works_then_the_person_has_it(
    slack: FakeSlack,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> None:
    server = start(start_server, make_settings, db_url, slack)
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/chat?lang=en") as ws:
        v = Visitor(ws)
        await v.say("I want to talk to a person")
        started = await v.next_bot()
        # told once that a person answers, and roughly when (the SLA in working hours)
        assert "within about 15 minutes" in started["text"]

        # a FAQ question while they wait is answered, and says so
        await v.say("How long is the warranty on the machines?")
        answer = await v.next_bot()
        assert answer["text"].startswith("While you wait:")
        assert "warranty" in answer["text"]
        assert "within about" not in answer["text"]  # told once, not on every answer

        # "stop" is confirmed
        await v.say("stop")
        stop = await v.next_bot()
        while "marketing" not in stop["text"]:  # "Was this helpful?" after the answer
            stop = await v.next_bot()
        assert "won't get any more marketing" in stop["text"]

        # anything else is acknowledged as passed on
        await v.say("zxqv wibble frobnicate")
        assert "passed that on" in (await v.next_bot())["text"]

        # staff see all of it in the thread: the customer's words and the bot's replies
        posts = await asyncio.to_thread(
            slack.wait_for, "chat.postMessage", 2, 10.0, lambda c: c.params.get("channel") == STAFF
        )
        summary = posts[0].params
        texts = await asyncio.to_thread(
            slack.wait_for,
            "chat.postMessage",
            1,
            10.0,
            lambda c: str(c.params.get("text", "")).startswith("*Bot:* While you wait:"),
        )
        assert texts
        await asyncio.to_thread(
            slack.wait_for,
            "chat.postMessage",
            1,
            10.0,
            lambda c: "*Customer:* stop" in str(c.params.get("text", "")),
        )

        # a person takes it: the bot stays quiet, the person answers; "stop" is still confirmed
        take = summary["blocks"][-1]["elements"][0]["value"]
        r = await asyncio.to_thread(
            send_action, server.url, SECRET, slack_block_action(take, user="UANNA", channel=STAFF)
        )
        assert r.status_code == 200
        await asyncio.to_thread(
            slack.wait_for,
            "chat.postMessage",
            1,
            10.0,
            lambda c: "took this" in str(c.params.get("text", "")),
        )
        await v.say("Do you ship to Norway?")
        await asyncio.to_thread(
            slack.wait_for,
            "chat.postMessage",
            1,
            10.0,
            lambda c: "*Customer:* Do you ship to Norway?" in str(c.params.get("text", "")),
        )
        await v.say("stop")
        after_take = await v.next_bot()
        # the next bot message after the Norway question is the stop confirmation: no answer
        assert "won't get any more marketing" in after_take["text"], after_take


async def test_off_hours_wording_is_relative_in_the_visitors_language(
    slack: FakeSlack,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> None:
    # a team that is never in today: the next opening is named by day and time, not "from"
    server = start(start_server, make_settings, db_url, slack, handoff_hours="mon 09:00-09:01")
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/chat?lang=de") as ws:
        v = Visitor(ws)
        await v.say("Ich möchte mit einem Menschen sprechen")
        told = (await v.next_bot())["text"]
        assert "09:00" in told
        assert any(w in told for w in ("am Montag um 09:00", "heute um 09:00", "morgen um 09:00"))
