"""A tutorial that follows the person: started in the web widget, paused, continued on
Telegram at the same step, finished there. And a shop's purchase and delivery reaching a linked
Telegram chat. Real sockets, the real python-telegram-bot client against the fake Bot API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import select

from bot.lifecycle.links import make_start_token
from bot.lifecycle.models import FlowState
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Identity
from channels.web.events import signature
from channels.web.identity import user_hash
from tests.auxil.build_messages import tg_callback, tg_message
from tests.conftest import REPO, LiveServer
from tests.fakes.telegram_api import FakeTelegram

EVENTS_SECRET = "shop-events"
WEB_SECRET = "shop-web"


@pytest.fixture
def server(
    telegram: FakeTelegram,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    return start_server(
        make_settings(
            db_url,
            content_dir=REPO,
            telegram_token=telegram.token,
            telegram_api_url=telegram.url,
            web_identity_secret=WEB_SECRET,
            events_secret=EVENTS_SECRET,
        )
    )


async def recv_bot(ws: Any, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    """The next ``count`` messages from the bot."""
    got: list[dict[str, Any]] = []

    async def go() -> None:
        while len(got) < count:
            frame = json.loads(await ws.recv())
            if frame["type"] == "message" and frame["sender"] != "user":
                got.append(frame)

    await asyncio.wait_for(go(), timeout)
    return got


def chat_texts(tg: FakeTelegram, chat: int) -> list[str]:
    return tg.sent_texts(chat)


def wait_texts(tg: FakeTelegram, chat: int, n: int, timeout: float = 20) -> list[str]:
    calls = tg.wait_for(
        "sendMessage", n, timeout=timeout, where=lambda c: str(c.params["chat_id"]) == str(chat)
    )
    assert len(calls) >= n, f"only {[c.params['text'] for c in calls]}"
    return [str(c.params["text"]) for c in calls]


def keyboard(tg: FakeTelegram, chat: int) -> list[list[dict[str, Any]]]:
    calls = [c for c in tg.calls_to("sendMessage") if str(c.params["chat_id"]) == str(chat)]
    markup = calls[-1].params.get("reply_markup") or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    return list(markup.get("inline_keyboard") or [])


def press(tg: FakeTelegram, chat: int, title: str) -> None:
    for row in keyboard(tg, chat):
        for b in row:
            if b["text"] == title:
                tg.push_update(
                    tg_callback(b["callback_data"], user_id=chat, keyboard=keyboard(tg, chat))
                )
                return
    raise AssertionError(f"no button {title!r} in {keyboard(tg, chat)}")


def flow_states(db_url: str) -> list[FlowState]:
    async def go() -> list[FlowState]:
        db = Database(db_url)
        try:
            async with db.session() as s:
                return list((await s.execute(select(FlowState).order_by(FlowState.id))).scalars())
        finally:
            await db.dispose()

    return asyncio.run(go())


def identities(db_url: str) -> list[tuple[int, str]]:
    async def go() -> list[tuple[int, str]]:
        db = Database(db_url)
        try:
            async with db.session() as s:
                rows = await s.execute(select(Identity.contact_id, Identity.channel))
                return [(cid, ch) for cid, ch in rows.all()]
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_tutorial_started_on_the_web_continues_on_telegram(
    server: LiveServer, telegram: FakeTelegram, db_url: str
) -> None:
    user = "cust-7"
    url = (
        f"ws://127.0.0.1:{server.port}/ws/chat?user_id={user}"
        f"&user_hash={user_hash(WEB_SECRET, user)}&lang=en"
    )

    async def on_the_web() -> None:
        async with websockets.connect(url) as ws:
            start = {
                "type": "button",
                "title": "Brewing guide",
                "payload": '/flow_start{"link":"tutorial"}',
            }
            await ws.send(json.dumps(start))
            intro, step1 = await recv_bot(ws, 2)
            assert intro["text"].startswith("Your Brewhaus parcel has arrived!")
            assert step1["text"].startswith("Step 1 of 5\n")
            nxt = next(b for b in step1["buttons"] if b["title"] == "Next ▸")
            await ws.send(
                json.dumps({"type": "button", "title": nxt["title"], "payload": nxt["payload"]})
            )
            (step2,) = await recv_bot(ws, 1)
            assert step2["text"].startswith("Step 2 of 5\nGrind 15 g")
            await ws.send(json.dumps({"type": "message", "text": "pause"}))
            (paused,) = await recv_bot(ws, 1)
            assert paused["text"].startswith("Paused.")

    asyncio.run(on_the_web())

    chat = 5150
    token = make_start_token(EVENTS_SECRET, user)
    telegram.push_update(tg_message(f"/start {token}", user_id=chat))
    assert wait_texts(telegram, chat, 1) == [
        "Thanks! This chat is now connected to your Brewhaus account."
    ]
    telegram.push_update(tg_message("continue", user_id=chat))
    texts = wait_texts(telegram, chat, 3)
    assert texts[1] == "Welcome back! Let's go on with the first-brew guide:"
    assert texts[2].startswith("Step 2 of 5\nGrind 15 g")  # the same step as on the web
    rows = keyboard(telegram, chat)
    assert [b["text"] for row in rows for b in row] == ["Next ▸", "Grind guide", "◂ Back", "Pause"]
    assert rows[1][0]["url"] == "https://brewhaus.example/guides/grind"

    for step, n in (("Step 3 of 5", 4), ("Step 4 of 5", 5), ("Step 5 of 5", 6)):
        press(telegram, chat, "Next ▸")
        assert wait_texts(telegram, chat, n)[-1].startswith(step)
    press(telegram, chat, "Next ▸")
    assert wait_texts(telegram, chat, 7)[-1].startswith("That's it, you're all set!")

    runs = [f for f in flow_states(db_url) if f.flow_id == "onboarding_tutorial"]
    assert [(f.status, f.step_id) for f in runs] == [("done", "step_9")]
    people = identities(db_url)
    assert {ch for _, ch in people} == {"web", "telegram"}
    assert len({cid for cid, _ in people}) == 1  # one person, two channels


def send_event(server: LiveServer, body: dict[str, Any]) -> httpx.Response:
    data = json.dumps(body).encode()
    return httpx.post(
        f"{server.url}/api/v1/events",
        content=data,
        headers={
            "Content-Type": "application/json",
            "X-Concierge-Signature": signature(EVENTS_SECRET, data),
        },
        timeout=30,
    )


def test_purchase_then_delivery_reach_a_linked_telegram_chat(
    server: LiveServer, telegram: FakeTelegram
) -> None:
    chat = 6161
    telegram.push_update(
        tg_message(f"/start {make_start_token(EVENTS_SECRET, 'shop-66')}", user_id=chat)
    )
    wait_texts(telegram, chat, 1)
    now = datetime.now(UTC).isoformat()
    r = send_event(
        server,
        {
            "id": "o-1",
            "type": "purchased",
            "user_id": "shop-66",
            "occurred_at": now,
            "properties": {"amount": 31.5},
        },
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1
    texts = wait_texts(telegram, chat, 2)
    assert texts[1].startswith("Thank you for your order!")
    r = send_event(
        server,
        {"id": "o-1-delivered", "type": "delivered", "user_id": "shop-66", "occurred_at": now},
    )
    assert r.status_code == 200
    texts = wait_texts(telegram, chat, 4)
    assert texts[2].startswith("Your Brewhaus parcel has arrived!")
    assert texts[3].startswith("Step 1 of 5\nUnpack your gear")
    assert [b["text"] for row in keyboard(telegram, chat) for b in row] == ["Next ▸", "Pause"]
