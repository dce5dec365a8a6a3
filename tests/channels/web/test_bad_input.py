"""Input no database or parser can take gets a 4xx with a reason (an error frame on the
WebSocket), never a 500, and the server goes on serving: over real HTTP and WebSocket against
the app ``concierge run`` builds, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from bot.settings import Settings
from channels.web.events import signature
from tests.auxil.build_messages import slack_dm
from tests.conftest import LiveServer
from tests.fakes.slack_api import FakeSlack, send_event

EVENTS_SECRET = "events-secret"
SLACK_SECRET = "slack-signing-secret"

# JSON text whose escapes decode to what no text column keeps
SURROGATE = '"\\ud800"'
NUL = '"a\\u0000b"'


@pytest.fixture
def server(
    db_url: str,
    slack: FakeSlack,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    return start_server(
        make_settings(
            db_url,
            events_secret=EVENTS_SECRET,
            admin_password="pw-123",
            slack_bot_token="xoxb-test",
            slack_signing_secret=SLACK_SECRET,
            slack_api_url=slack.api_url,
        )
    )


def still_serving(server: LiveServer) -> None:
    r = httpx.post(
        f"{server.url}/webhooks/rest/webhook",
        json={"sender": "after", "message": "Do you ship to Austria?"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()[0]["text"]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (
            '{"sender": "s1", "message": ' + SURROGATE + "}",
            "surrogate (not valid Unicode) at $.message",
        ),
        ('{"sender": "s1", "message": ' + NUL + "}", "NUL character (\\u0000) at $.message"),
        ('{"sender": ' + NUL + ', "message": "hi"}', "NUL"),
        ('{"sender": "s1", "message": "hi", "metadata": {"language": ' + NUL + "}}", "NUL"),
        (
            '{"sender": "s1", "message": "hi", "metadata": ' + "[" * 5000 + "]" * 5000 + "}",
            "nested",
        ),
    ],
)
def test_rest_webhook_refuses_text_no_database_keeps(
    server: LiveServer, raw: str, words: str
) -> None:
    r = httpx.post(
        f"{server.url}/webhooks/rest/webhook",
        content=raw.encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]
    still_serving(server)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("[" * 5000 + "]" * 5000, "nested deeper than"),
        ("[" * 60_000, "nested deeper than"),
        ('{"text": ' + SURROGATE + "}", "surrogate"),
        ('{"text": ' + NUL + "}", "NUL"),
    ],
)
def test_model_parse_refuses_deep_nesting_and_bad_text(
    server: LiveServer, raw: str, words: str
) -> None:
    r = httpx.post(f"{server.url}/model/parse", content=raw.encode(), timeout=30)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]
    assert httpx.post(f"{server.url}/model/parse", json={"text": "hello"}).status_code == 200


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('{"id": "e1", "type": "signed_up", "user_id": ' + SURROGATE + "}", "surrogate"),
        ('{"id": "e1", "type": "signed_up", "user_id": ' + NUL + "}", "NUL"),
        ("[" * 5000 + "]" * 5000, "nested deeper than"),
    ],
)
def test_events_api_refuses_deep_nesting_and_bad_text(
    server: LiveServer, raw: str, words: str
) -> None:
    body = raw.encode()
    r = httpx.post(
        f"{server.url}/api/v1/events",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Concierge-Signature": signature(EVENTS_SECRET, body),
        },
        timeout=30,
    )
    assert r.status_code in (400, 422), r.text
    assert words in json.dumps(r.json())
    still_serving(server)


async def recv(ws: Any, kind: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame

    return await asyncio.wait_for(go(), 30)


async def test_websocket_bad_frames_get_error_frames_and_the_socket_lives_on(
    server: LiveServer,
) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/chat?lang=%00%00") as ws:
        await recv(ws, "history")
        await ws.send('{"type": "message", "text": ' + SURROGATE + ', "client_id": "s"}')
        err = await recv(ws, "error")
        assert err["code"] == "bad_frame" and "surrogate" in err["message"]
        await ws.send('{"type": "message", "text": ' + NUL + ', "client_id": "n"}')
        err = await recv(ws, "error")
        assert err["code"] == "bad_frame" and "NUL" in err["message"]
        await ws.send("[" * 3000 + "]" * 3000)
        err = await recv(ws, "error")
        assert err["code"] == "bad_frame" and "nested" in err["message"]
        await ws.send(b"\x00\x01binary")
        err = await recv(ws, "error")
        assert err["code"] == "bad_frame" and "binary" in err["message"]
        # the same socket still chats (and the NUL language hint was dropped, not stored)
        await ws.send(json.dumps({"type": "message", "text": "hello", "client_id": "ok"}))
        ack = await recv(ws, "ack")
        assert ack["client_id"] == "ok" and ack["id"]


@pytest.mark.parametrize(
    ("path", "ctype", "body", "headers"),
    [
        ("/slack/events", "application/json", b"{not json", {}),
        ("/slack/events", "application/json", b"[" * 5000, {}),
        ("/slack/events", "application/json", b'"\\ud800"', {}),
        ("/slack/interactivity", "application/x-www-form-urlencoded", b"payload=%7Bbroken", {}),
        ("/slack/commands", "application/x-www-form-urlencoded", b"%ZZ=%", {}),
        (
            "/slack/events",
            "application/json",
            b"{}",
            {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
        ),
    ],
)
def test_slack_unsigned_malformed_bodies_get_401_before_any_parsing(
    server: LiveServer,
    slack: FakeSlack,
    path: str,
    ctype: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    r = httpx.post(
        f"{server.url}{path}", content=body, headers={"Content-Type": ctype, **headers}, timeout=30
    )
    assert r.status_code == 401, r.text
    assert "signature" in r.json()["error"].lower()
    # a signed event still gets its answer
    assert send_event(server.url, SLACK_SECRET, slack_dm("hello", channel="D1")).status_code == 200
    slack.wait_for("chat.postMessage", 1, where=lambda c: c.params.get("channel") == "D1")


def test_slack_oversized_body_is_refused_unread(server: LiveServer) -> None:
    r = httpx.post(
        f"{server.url}/slack/events",
        content=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413


def test_admin_ids_beyond_the_database_are_404(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        c.get("/admin/login")
        r = c.post("/admin/login", data={"name": "Anna", "password": "pw-123", **csrf(c)})
        assert r.status_code == 303
        huge = "9" * 30
        for path in (f"/admin/inbox/{huge}", f"/admin/inbox/{2**63}", "/admin/inbox/0"):
            assert c.get(path).status_code == 404
        assert c.get(f"/admin/inbox/{huge}/messages.json").status_code == 404
        # every console POST checks the CSRF token first: a forged one learns nothing
        assert c.post(f"/admin/inbox/{huge}/resolve", data={"csrf": "x"}).status_code == 403
        import re

        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/admin/inbox").text)
        assert token
        r = c.post(f"/admin/inbox/{huge}/resolve", data={"csrf": token[1]})
        assert r.status_code == 404
    still_serving(server)


def csrf(client: httpx.Client) -> dict[str, str]:
    """The login form's CSRF field (when the form has one)."""
    import re

    page = client.get("/admin/login").text
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    return {"csrf": m.group(1)} if m else {}
