"""A fake Slack Web API (``/api/<method>``) and signed requests to our app, as Slack sends them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
from aiohttp import WSMsgType, web

from tests.fakes.base import FakeServer, read_params


class FakeSlack(FakeServer):
    def __init__(self, bot_user: str = "UBOT") -> None:
        super().__init__()
        self.bot_user = bot_user
        self._ts = itertools.count(1)
        self.users: dict[str, dict[str, Any]] = {}
        self.sockets: list[web.WebSocketResponse] = []  # Socket Mode connections
        self.app.router.add_route("*", "/api/{method}", self._handle)
        self.app.router.add_get("/socket", self._socket)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [
            c.params
            for c in self.calls_to("chat.postMessage")
            if channel is None or c.params.get("channel") == channel
        ]

    # --- Socket Mode ---------------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.record("socket.connect", {"authorization": request.headers.get("Authorization")})
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}}
        )
        self.sockets.append(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.record("socket.ack", json.loads(msg.data))
        finally:
            self.sockets.remove(ws)
        return ws

    def push_envelope(
        self, body: dict[str, Any], *, kind: str = "events_api", retry_attempt: int = 0
    ) -> str:
        """Send a Socket Mode envelope to every connected client; returns its envelope id
        (the client acknowledges it with that id: ``calls_to("socket.ack")``)."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
            "payload": body,
        }

        async def send() -> None:
            for ws in list(self.sockets):
                await ws.send_json(envelope)

        asyncio.run_coroutine_threadsafe(send(), self.loop).result(5)
        return envelope_id

    async def m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self.port}/socket"}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await read_params(request)
        sc = self._take_scenario(method, params)
        self.record(method, params, ok=sc is None or sc.kind == "slow", request=request)
        if sc is not None:
            if sc.kind == "slow":
                await asyncio.sleep(sc.delay)
            elif sc.kind == "hang":
                await self.hang(sc)
                return web.Response(status=504)
            elif sc.kind == "429":
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(int(sc.retry_after))},
                )
            elif sc.kind == "500":
                return web.json_response({"ok": False, "error": "internal_error"}, status=500)
            elif sc.kind == "403":
                return web.json_response({"ok": False, "error": "channel_not_found"})
            elif sc.kind == "reset":
                assert request.transport is not None
                request.transport.close()
                return web.Response()
            elif sc.kind == "custom":
                return web.json_response(sc.body, status=sc.status)
        if self.delay:
            await asyncio.sleep(self.delay)
        fn = getattr(self, "m_" + method.replace(".", "_"), None)
        if fn is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response({"ok": True, **(await fn(params))})

    async def m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"user_id": self.bot_user, "team_id": "T1", "bot_id": "B1", "team": "Shop"}

    async def m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        return {"channel": p.get("channel"), "ts": ts, "message": {"text": p.get("text"), "ts": ts}}

    async def m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"channel": p.get("channel"), "ts": p.get("ts")}

    async def m_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        users = str(p.get("users", ""))
        return {"channel": {"id": "D" + users.replace(",", "")}}

    async def m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        uid = str(p.get("user"))
        return {
            "user": self.users.get(
                uid, {"id": uid, "name": uid.lower(), "real_name": uid, "tz": "Europe/Berlin"}
            )
        }

    async def m_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"members": list(self.users.values()), "response_metadata": {"next_cursor": ""}}


def sign(secret: str, body: bytes, ts: int | None = None) -> dict[str, str]:
    """Slack's request signature: ``v0=`` HMAC-SHA256 of ``v0:<ts>:<body>``."""
    ts = int(time.time()) if ts is None else ts
    base = f"v0:{ts}:".encode() + body
    sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig}


def event_callback(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """The Events API body around an event (a fresh ``event_id`` unless given: a retry of the
    same event carries the same one)."""
    return {
        "type": "event_callback",
        "team_id": "T1",
        "api_app_id": "A1",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:12].upper()}",
        "event_time": int(time.time()),
        "event": event,
    }


def send_event(
    url: str,
    secret: str,
    event: dict[str, Any],
    *,
    event_id: str | None = None,
    retry: int | None = None,
    ts: int | None = None,
    bad_signature: bool = False,
) -> httpx.Response:
    """An Events API delivery over HTTP, signed as Slack signs it."""
    body = json.dumps(event_callback(event, event_id)).encode()
    headers = {"Content-Type": "application/json", **sign(secret, body, ts)}
    if bad_signature:
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    if retry is not None:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return httpx.post(f"{url}/slack/events", content=body, headers=headers)


def send_action(url: str, secret: str, payload: dict[str, Any]) -> httpx.Response:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(secret, body)}
    return httpx.post(f"{url}/slack/interactivity", content=body, headers=headers)
