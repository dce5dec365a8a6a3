"""Handoff end to end: a customer on Telegram or the web widget, staff in a Slack thread."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websockets

from bot.settings import Settings
from tests.auxil.build_messages import slack_block_action, tg_callback, tg_message
from tests.conftest import LiveServer
from tests.fakes.slack_api import FakeSlack, send_action, send_event
from tests.fakes.telegram_api import FakeTelegram

SECRET = "sig"
STAFF = "CSTAFF"


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTelegram, FakeSlack]]:
    tg, sl = FakeTelegram().start(), FakeSlack().start()
    sl.users["UANNA"] = {
        "id": "UANNA",
        "name": "anna",
        "real_name": "Anna",
        "profile": {"display_name": "Anna"},
    }
    yield tg, sl
    tg.stop()
    sl.stop()


@pytest.fixture
def server(
    fakes: tuple[FakeTelegram, FakeSlack],
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    tg, sl = fakes
    return start_server(
        make_settings(
            db_url,
            telegram_token=tg.token,
            telegram_api_url=tg.url,
            slack_bot_token="xoxb-t",
            slack_signing_secret=SECRET,
            slack_api_url=sl.api_url,
            slack_staff_channel=STAFF,
            handoff_hours="mon-sun 00:00-23:59",
        )
    )


def staff_thread_reply(server: LiveServer, thread_ts: str, text: str, user: str = "UANNA") -> None:
    event = {
        "type": "message",
        "channel": STAFF,
        "channel_type": "channel",
        "user": user,
        "text": text,
        "ts": f"{time.time():.6f}",
        "thread_ts": thread_ts,
    }
    assert send_event(server.url, SECRET, event, event_id=f"E{time.time()}").status_code == 200


def test_telegram_customer_to_slack_staff_and_back(
    fakes: tuple[FakeTelegram, FakeSlack], server: LiveServer
) -> None:
    tg, sl = fakes
    tg.push_update(tg_message("Do you ship to Norway?", user_id=77))
    tg.wait_for("sendMessage", 1, where=lambda c: str(c.params["chat_id"]) == "77")
    tg.push_update(tg_message("I want to talk to a human", user_id=77))
    told = tg.wait_for("sendMessage", 3, where=lambda c: str(c.params["chat_id"]) == "77")
    assert any("team" in str(c.params["text"]) for c in told)

    # the staff channel gets one summary with buttons, and the transcript in its thread
    posts = sl.wait_for("chat.postMessage", 2, where=lambda c: c.params.get("channel") == STAFF)
    summary = posts[0].params
    assert "Handoff #1" in summary["text"] and "telegram" in summary["text"]
    actions = summary["blocks"][-1]["elements"]
    assert [a["text"]["text"] for a in actions] == ["Take", "Resolve", "Hand back to bot"]
    thread_ts = posts[1].params["thread_ts"]
    assert "Norway" in posts[1].params["text"]  # the transcript

    # while nobody has taken it, the customer's words go to the thread and are acknowledged
    tg.push_update(tg_message("Anna here, customer number 1234", user_id=77))
    sl.wait_for(
        "chat.postMessage", 1, where=lambda c: "customer number 1234" in str(c.params.get("text"))
    )
    tg.wait_for("sendMessage", 4, where=lambda c: str(c.params["chat_id"]) == "77")
    assert "passed that on" in tg.sent_texts(77)[-1]
    before = len(tg.sent_texts(77))

    # a staff reply in the thread reaches the customer's Telegram chat; a // note does not
    staff_thread_reply(server, thread_ts, "// checking the warehouse first")
    staff_thread_reply(server, thread_ts, "Hi, it left our warehouse today.")
    got = tg.wait_for("sendMessage", before + 1, where=lambda c: str(c.params["chat_id"]) == "77")
    assert got[-1].params["text"] == "Hi, it left our warehouse today."
    server.wait_drained()
    assert not any("warehouse first" in t for t in tg.sent_texts(77))

    # Resolve: the bot answers again and asks for a CSAT score
    resolve = actions[1]["value"]
    assert (
        send_action(
            server.url, SECRET, slack_block_action(resolve, user="UANNA", channel=STAFF)
        ).status_code
        == 200
    )
    got = tg.wait_for("sendMessage", before + 3, where=lambda c: str(c.params["chat_id"]) == "77")
    csat = got[-1].params
    assert [b[0]["text"] for b in csat["reply_markup"]["inline_keyboard"]] == [
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    tg.push_update(
        tg_callback(csat["reply_markup"]["inline_keyboard"][4][0]["callback_data"], user_id=77)
    )
    got = tg.wait_for("sendMessage", before + 4, where=lambda c: str(c.params["chat_id"]) == "77")
    assert got[-1].params["text"] == "Thank you for your rating!"
    tg.push_update(tg_message("How long is the warranty?", user_id=77))
    got = tg.wait_for("sendMessage", before + 5, where=lambda c: str(c.params["chat_id"]) == "77")
    assert (
        "2-year warranty" in got[-1 if "warranty" in got[-1].params["text"] else -2].params["text"]
    )


def test_unknown_thread_gets_an_explanation(
    fakes: tuple[FakeTelegram, FakeSlack], server: LiveServer
) -> None:
    _, sl = fakes
    staff_thread_reply(server, "999.000001", "hello?")
    got = sl.wait_for(
        "chat.postMessage", 1, where=lambda c: c.params.get("thread_ts") == "999.000001"
    )
    assert got and "no handoff" in got[0].params["text"]


def test_blocked_customer_is_reported_in_the_thread(
    fakes: tuple[FakeTelegram, FakeSlack], server: LiveServer
) -> None:
    tg, sl = fakes
    tg.push_update(tg_message("human please", user_id=88))
    posts = sl.wait_for("chat.postMessage", 2, where=lambda c: c.params.get("channel") == STAFF)
    thread_ts = posts[1].params["thread_ts"]
    tg.play("403", "sendMessage", times=3)
    staff_thread_reply(server, thread_ts, "Are you still there?")
    got = sl.wait_for(
        "chat.postMessage",
        1,
        timeout=15,
        where=lambda c: "Not delivered" in str(c.params.get("text")),
    )
    assert got and got[0].params["thread_ts"] == thread_ts


async def test_web_visitor_gets_the_staff_reply_live(
    fakes: tuple[FakeTelegram, FakeSlack], server: LiveServer
) -> None:
    _, sl = fakes
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/chat") as ws:
        frames: list[dict[str, Any]] = []

        async def until(pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            import asyncio

            async def go() -> dict[str, Any]:
                while True:
                    f = json.loads(await ws.recv())
                    frames.append(f)
                    if pred(f):
                        return f

            return await asyncio.wait_for(go(), 15)

        await until(lambda f: f["type"] == "history")
        await ws.send(
            json.dumps({"type": "message", "text": "Can I talk to a person?", "client_id": "h1"})
        )
        await until(lambda f: f["type"] == "message" and f["sender"] == "bot")
        import asyncio

        posts = await asyncio.to_thread(
            sl.wait_for, "chat.postMessage", 2, 10.0, lambda c: c.params.get("channel") == STAFF
        )
        thread_ts = posts[1].params["thread_ts"]
        await asyncio.to_thread(staff_thread_reply, server, thread_ts, "Hello from Anna!")
        f = await until(lambda f: f["type"] == "message" and f["sender"] == "staff")
        assert f["text"] == "Hello from Anna!"
        assert f["metadata"]["staff_name"] == "Anna"


def test_long_staff_reply_is_split_not_cut(
    fakes: tuple[FakeTelegram, FakeSlack], server: LiveServer
) -> None:
    tg, sl = fakes
    tg.push_update(tg_message("human please", user_id=91))
    posts = sl.wait_for("chat.postMessage", 2, where=lambda c: c.params.get("channel") == STAFF)
    long_reply = " ".join(f"word{i}" for i in range(1200))  # about 9,000 characters
    staff_thread_reply(server, posts[1].params["thread_ts"], long_reply)
    parts = tg.wait_for(
        "sendMessage", 4, timeout=20, where=lambda c: str(c.params["chat_id"]) == "91"
    )
    texts = [str(c.params["text"]) for c in parts[1:]]
    assert all(len(t) <= 4096 for t in texts)
    assert " ".join(texts) == long_reply
