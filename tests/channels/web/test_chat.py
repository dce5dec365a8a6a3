"""The widget's WebSocket protocol, over a real socket against the live app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import websockets

from bot.settings import Settings
from channels.web.identity import user_hash
from tests.conftest import LiveServer


@pytest.fixture
def server(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> LiveServer:
    return start_server(make_settings(db_url, web_identity_secret="shop-secret"))


def ws_url(server: LiveServer, **params: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in params.items())
    return f"ws://127.0.0.1:{server.port}/ws/chat" + (f"?{q}" if q else "")


async def recv(ws: Any, kind: str, timeout: float = 10) -> dict[str, Any]:
    """The next frame of type ``kind`` (others are skipped)."""

    async def go() -> dict[str, Any]:
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame

    return await asyncio.wait_for(go(), timeout)


async def bot_message(ws: Any) -> dict[str, Any]:
    while True:
        f = await recv(ws, "message")
        if f["sender"] != "user":
            return f


async def test_session_history_and_answer(server: LiveServer) -> None:
    async with websockets.connect(ws_url(server)) as ws:
        session = await recv(ws, "session")
        assert session["max_message_bytes"] == 4096
        assert (await recv(ws, "history"))["messages"] == []
        await ws.send(
            json.dumps({"type": "message", "text": "Do you ship to Austria?", "client_id": "c1"})
        )
        echo = await recv(ws, "message")
        assert echo["sender"] == "user" and echo["client_id"] == "c1"
        answer = await bot_message(ws)
        assert "every EU country" in answer["text"]
    # a reconnect with the token restores the conversation
    async with websockets.connect(ws_url(server, token=session["token"])) as ws:
        again = await recv(ws, "session")
        assert again["visitor_id"] == session["visitor_id"]
        history = (await recv(ws, "history"))["messages"]
        assert [m["sender"] for m in history][:2] == ["user", "bot"]
        assert history[0]["text"] == "Do you ship to Austria?"


async def test_bad_frames_get_errors_and_the_socket_lives_on(server: LiveServer) -> None:
    async with websockets.connect(ws_url(server)) as ws:
        await recv(ws, "history")
        await ws.send("{not json")
        assert (await recv(ws, "error"))["code"] == "bad_frame"
        await ws.send(json.dumps({"type": "dance"}))
        err = await recv(ws, "error")
        assert err["code"] == "unknown_type" and "dance" in err["message"]
        await ws.send(json.dumps({"type": "message", "text": "x" * 5000, "client_id": "big"}))
        err = await recv(ws, "error")
        assert err["code"] == "too_large" and "4096" in err["message"]
        await ws.send(json.dumps({"type": "ping"}))
        await recv(ws, "pong")
        await ws.send(json.dumps({"type": "message", "text": "hello", "client_id": "c2"}))
        assert (await bot_message(ws))["text"]


async def test_resent_message_is_answered_once(server: LiveServer) -> None:
    async with websockets.connect(ws_url(server)) as ws:
        session = await recv(ws, "session")
        frame = json.dumps({"type": "message", "text": "hello", "client_id": "same"})
        await ws.send(frame)
        assert (await recv(ws, "ack"))["duplicate"] is False
        await ws.send(frame)  # e.g. the widget resends after a reconnect
        assert (await recv(ws, "ack"))["duplicate"] is True
    async with websockets.connect(ws_url(server, token=session["token"])) as ws:
        history = (await recv(ws, "history"))["messages"]
        assert [m["text"] for m in history if m["sender"] == "user"] == ["hello"]


async def test_forged_token_gets_a_new_visitor(server: LiveServer) -> None:
    async with websockets.connect(ws_url(server)) as ws:
        session = await recv(ws, "session")
    forged = session["token"][:-3] + "abc"
    async with websockets.connect(ws_url(server, token=forged)) as ws:
        assert (await recv(ws, "session"))["visitor_id"] != session["visitor_id"]


async def test_shop_identification_merges_devices(server: LiveServer) -> None:
    good = user_hash("shop-secret", "cust-42")
    async with websockets.connect(ws_url(server, user_id="cust-42", user_hash=good)) as ws:
        await recv(ws, "history")
        await ws.send(json.dumps({"type": "message", "text": "hello", "client_id": "a"}))
        await bot_message(ws)
    # another device, same shop user: sees the same history
    async with websockets.connect(ws_url(server, user_id="cust-42", user_hash=good)) as ws:
        history = (await recv(ws, "history"))["messages"]
        assert any(m["text"] == "hello" for m in history)
    # a wrong hash is refused: anonymous, and told so
    async with websockets.connect(ws_url(server, user_id="cust-42", user_hash="00" * 32)) as ws:
        assert (await recv(ws, "error"))["code"] == "bad_identity"
        assert (await recv(ws, "history"))["messages"] == []


async def test_history_survives_a_server_restart(
    sqlite_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> None:
    settings = make_settings(sqlite_url)
    first = start_server(settings)
    async with websockets.connect(ws_url(first)) as ws:
        token = (await recv(ws, "session"))["token"]
        await ws.send(json.dumps({"type": "message", "text": "hello", "client_id": "r1"}))
        await bot_message(ws)
    first.stop()
    second = start_server(settings)  # same database and secret, new process state
    async with websockets.connect(ws_url(second, token=token)) as ws:
        history = (await recv(ws, "history"))["messages"]
    assert [m["sender"] for m in history][:2] == ["user", "bot"]


async def test_pushes_reach_a_visitor_connected_to_another_process(
    pg_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> None:
    """Two app processes on one PostgreSQL: whichever worker sends, the socket gets it."""
    settings = make_settings(pg_url)
    a, b = start_server(settings), start_server(settings)
    async with websockets.connect(ws_url(b)) as ws_b, websockets.connect(ws_url(a)) as ws_a:
        await recv(ws_a, "history")
        vid = (await recv(ws_b, "session"))["visitor_id"]
        await recv(ws_b, "history")
        from bot.engine import Reply
        from bot.runtime import Runtime
        from bot.types import Outbound

        rt = Runtime(settings, start_worker=False)
        async with rt.db.session() as s:
            from bot.contacts import resolve_identity

            contact, _ = await resolve_identity(
                s, channel="web", external_id=vid, now=rt.clock.now()
            )
            conv = await rt.engine.open_conversation(s, contact, rt.clock.now())
            for i in range(6):
                reply = Reply(
                    contact_id=contact.id,
                    conversation_id=conv.id,
                    channel="web",
                    address=vid,
                    message=Outbound(text=f"staff note {i}", sender="staff"),
                    idempotency_key=f"fanout-test:{i}",
                )
                await rt.engine.write(s, [reply], now=rt.clock.now())
        await rt.db.dispose()
        got = [(await recv(ws_b, "message"))["text"] for _ in range(6)]
    assert got == [f"staff note {i}" for i in range(6)]


async def chat(server: LiveServer, text: str, **params: str) -> dict[str, Any]:
    """One message on a new socket; the session frame it opened with."""
    async with websockets.connect(ws_url(server, **params)) as ws:
        session = await recv(ws, "session")
        await ws.send(json.dumps({"type": "message", "text": text, "client_id": text[:20]}))
        await bot_message(ws)
    return session


async def history_of(server: LiveServer, **params: str) -> tuple[dict[str, Any], list[str]]:
    async with websockets.connect(ws_url(server, **params)) as ws:
        session = await recv(ws, "session")
        messages = (await recv(ws, "history"))["messages"]
    return session, [m["text"] for m in messages]


async def test_another_person_with_the_same_widget_token_starts_a_new_session(
    server: LiveServer,
) -> None:
    """A shared computer: customer 42 chats while logged in; whoever uses the widget next with
    the token left in the browser, logged out or as someone else, sees none of it."""
    ident = {"user_id": "cust-42", "user_hash": user_hash("shop-secret", "cust-42")}
    first = await chat(server, "My card ends in 4242, order 1234 is late", **ident)
    token = first["token"]
    # logged out: the same browser's token, no identification
    session, texts = await history_of(server, token=token)
    assert session["visitor_id"] != first["visitor_id"]
    assert texts == []
    # another account on the same browser
    other = {"user_id": "cust-43", "user_hash": user_hash("shop-secret", "cust-43")}
    session, texts = await history_of(server, token=token, **other)
    assert session["visitor_id"] != first["visitor_id"]
    assert not any("4242" in t for t in texts)
    # a wrong hash for 42 with 42's token: anonymous, so not 42's conversation either
    session, texts = await history_of(server, token=token, user_id="cust-42", user_hash="0" * 64)
    assert texts == []
    # 42 again: their conversation, under the same visitor
    session, texts = await history_of(server, token=token, **ident)
    assert session["visitor_id"] == first["visitor_id"]
    assert texts[0] == "My card ends in 4242, order 1234 is late"


async def test_visitor_tokens_expire(server: LiveServer) -> None:
    """A token opens its conversation for CONCIERGE_WEB_VISITOR_TOKEN_DAYS (30) after it was
    issued; each visit issues a fresh one."""
    import time

    from channels.web.identity import VisitorTokens

    first = await chat(server, "Do you ship to Norway?")
    vid = first["visitor_id"]

    def issued(days_ago: float) -> str:
        then = time.time() - days_ago * 86400
        return VisitorTokens("test-secret", 30 * 86400, clock=lambda: then).issue(vid)[1]

    session, texts = await history_of(server, token=issued(29))
    assert session["visitor_id"] == vid and texts[0] == "Do you ship to Norway?"
    fresh = session["token"]
    session, texts = await history_of(server, token=issued(31))
    assert session["visitor_id"] != vid and texts == []
    # the token issued at the last visit is the one that counts
    session, texts = await history_of(server, token=fresh)
    assert session["visitor_id"] == vid and texts
