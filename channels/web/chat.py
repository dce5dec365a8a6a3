"""WebSocket chat for the widget (protocol in CONTRIBUTING.md, "Web chat protocol")."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from bot.contacts import link_user, resolve_identity
from bot.greeting import frame as greeting_frame
from bot.greeting import greetings_of
from bot.runtime import Runtime
from bot.storage.models import Message
from bot.types import Delivery, Inbound, SendResult, TransientError
from channels.web.fanout import PgFanout
from channels.web.identity import VisitorTokens, verify_user_hash

log = logging.getLogger(__name__)

HISTORY_LIMIT = 100
CHANNEL = "web"


def message_frame(m: Message) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "message",
        "id": m.id,
        "sender": m.sender,
        "text": m.text,
        "buttons": m.buttons or [],
        "ts": m.created_at.isoformat(),
    }
    if m.client_id:
        frame["client_id"] = m.client_id
    staff = (m.meta or {}).get("staff_name")
    if staff:
        frame["metadata"] = {"staff_name": staff}
    return frame


class Hub:
    """Open sockets by visitor address; one visitor may have several tabs open."""

    def __init__(self) -> None:
        self._sockets: dict[str, set[WebSocket]] = defaultdict(set)
        # sockets still receiving their history: pushes wait here, then follow the history
        self._pending: dict[WebSocket, list[dict[str, Any]]] = {}

    def add(self, address: str, ws: WebSocket, *, hold: bool = False) -> None:
        self._sockets[address].add(ws)
        if hold:
            self._pending[ws] = []

    async def release(self, ws: WebSocket) -> None:
        """Send what arrived while the history was on its way (in order)."""
        for frame in self._pending.pop(ws, []):
            await ws.send_json(frame)

    def remove(self, address: str, ws: WebSocket) -> None:
        self._pending.pop(ws, None)
        self._sockets[address].discard(ws)
        if not self._sockets[address]:
            del self._sockets[address]

    def connected(self, address: str) -> bool:
        return bool(self._sockets.get(address))

    async def push(self, address: str, frame: dict[str, Any]) -> int:
        sent = 0
        for ws in list(self._sockets.get(address, ())):
            held = self._pending.get(ws)
            if held is not None:
                held.append(frame)
                sent += 1
                continue
            try:
                if ws.application_state == WebSocketState.CONNECTED:
                    await ws.send_json(frame)
                    sent += 1
            except Exception:  # a closing socket: the history restores it later
                log.debug("push to closing socket failed", exc_info=True)
        return sent


class WebSender:
    """Delivers outbox rows to open sockets. A visitor who is away finds them in the history."""

    channel = CHANNEL

    def __init__(self, hub: Hub, fanout: PgFanout | None = None) -> None:
        self.hub = hub
        self.fanout = fanout

    async def send(self, delivery: Delivery) -> SendResult:
        m = delivery.message
        frame: dict[str, Any] = {
            "type": "message",
            "id": m.metadata.get("message_id"),
            "sender": m.sender,
            "text": m.text,
            "buttons": [b.to_dict() for b in m.buttons],
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        }
        if m.metadata.get("staff_name"):
            frame["metadata"] = {"staff_name": m.metadata["staff_name"]}
        if self.fanout is not None:  # the visitor's socket may be open in another process
            try:
                await self.fanout.publish(delivery.address, frame)
            except Exception as e:  # nothing was pushed yet: retrying sends nothing twice
                raise TransientError(f"fan-out failed: {e}") from e
        n = await self.hub.push(delivery.address, frame)
        return SendResult(platform_message_id=f"ws:{delivery.outbox_id}:{n}")


class _Bucket:
    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class WebChat:
    def __init__(self, runtime: Runtime, hub: Hub) -> None:
        self.runtime = runtime
        self.hub = hub
        self.tokens = VisitorTokens(runtime.secret_key)
        greetings_of(runtime)  # every language's greeting, once

    async def endpoint(self, ws: WebSocket) -> None:
        settings = self.runtime.settings
        origin = ws.headers.get("origin")
        if (
            origin
            and "*" not in settings.allowed_origins
            and origin not in settings.allowed_origins
        ):
            await ws.close(code=4403, reason="origin not allowed")
            return
        await ws.accept()
        q = ws.query_params
        visitor_id = self.tokens.verify(q.get("token"))
        visitor_id, token = self.tokens.issue(visitor_id)
        lang = (q.get("lang") or "")[:8] or None
        user_id, user_hash = q.get("user_id"), q.get("user_hash")
        now = self.runtime.clock.now()
        # listen before reading the history: a reply sent meanwhile is held, then follows it
        self.hub.add(visitor_id, ws, hold=True)
        try:
            await self._session(ws, visitor_id, token, lang, user_id, user_hash, now)
            bucket = _Bucket(settings.web_rate_limit_per_minute)
            while True:
                raw = await ws.receive_text()
                await self._frame(ws, visitor_id, raw, lang, bucket)
        except WebSocketDisconnect:
            pass
        except RuntimeError:
            # the visitor left while their turn was still answering: nothing to send it to
            if WebSocketState.DISCONNECTED not in (ws.client_state, ws.application_state):
                raise
        finally:
            self.hub.remove(visitor_id, ws)

    async def _session(
        self,
        ws: WebSocket,
        visitor_id: str,
        token: str,
        lang: str | None,
        user_id: str | None,
        user_hash: str | None,
        now: Any,
    ) -> None:
        """The session and history frames (then whatever was held meanwhile)."""
        settings = self.runtime.settings
        async with self.runtime.db.session() as s:
            contact, identity = await resolve_identity(
                s, channel=CHANNEL, external_id=visitor_id, now=now, language=lang
            )
            if user_id:
                if verify_user_hash(settings.web_identity_secret, user_id, user_hash or ""):
                    contact = await link_user(s, identity, user_id, now)
                else:
                    await ws.send_json(
                        {
                            "type": "error",
                            "code": "bad_identity",
                            "message": "user_hash does not match user_id; chatting anonymously",
                        }
                    )
            rows = (
                await s.execute(
                    select(Message)
                    .where(Message.contact_id == contact.id)
                    .order_by(Message.id.desc())
                    .limit(HISTORY_LIMIT)
                )
            ).scalars()
            history = [message_frame(m) for m in reversed(list(rows))]
            # the opening message for an empty chat (anonymous: made once at startup)
            greets = greetings_of(self.runtime)
            hello = None
            if not history:
                hello = await greets.for_contact(s, contact, greets.language(lang, contact))
        await ws.send_json(
            {
                "type": "session",
                "token": token,
                "visitor_id": visitor_id,
                "max_message_bytes": settings.max_message_bytes,
                "greeting": greeting_frame(hello),
            }
        )
        await ws.send_json({"type": "history", "messages": history})
        await self.hub.release(ws)

    async def _frame(
        self, ws: WebSocket, visitor_id: str, raw: str, lang: str | None, bucket: _Bucket
    ) -> None:
        limit = self.runtime.settings.max_message_bytes
        if len(raw.encode("utf-8")) > limit * 2 + 1024:
            await _error(ws, "too_large", f"frame larger than {limit * 2 + 1024} bytes")
            return
        try:
            frame = json.loads(raw)
        except json.JSONDecodeError as e:
            await _error(ws, "bad_frame", f"not JSON: {e.msg} at position {e.pos}")
            return
        if not isinstance(frame, dict):
            await _error(ws, "bad_frame", "a frame is a JSON object with a 'type'")
            return
        kind = frame.get("type")
        if kind == "ping":
            await ws.send_json({"type": "pong"})
            return
        if kind not in ("message", "button"):
            await _error(ws, "unknown_type", f"unknown frame type {kind!r}")
            return
        text = frame.get("text") if kind == "message" else frame.get("title")
        payload = frame.get("payload") if kind == "button" else None
        client_id = frame.get("client_id")
        if kind == "button" and not isinstance(payload, str):
            await _error(ws, "bad_frame", "a button frame needs a string 'payload'")
            return
        if not isinstance(text, str):
            text = payload if isinstance(payload, str) else None
        if not isinstance(text, str) or not text.strip():
            await _error(ws, "bad_frame", "a message frame needs a non-empty string 'text'")
            return
        if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 64):
            await _error(ws, "bad_frame", "'client_id' must be a string of at most 64 characters")
            return
        size = len(text.encode("utf-8"))
        if size > limit:
            await _error(
                ws, "too_large", f"message is {size} bytes; the limit is {limit}", client_id
            )
            return
        if not bucket.take():
            await _error(ws, "rate_limited", "too many messages; wait a moment", client_id)
            return
        inbound = Inbound(
            channel=CHANNEL,
            external_id=visitor_id,
            text=text,
            payload=payload,
            language=lang,
            platform_message_id=f"{visitor_id}:{client_id}" if client_id else None,
            metadata={"client_id": client_id} if client_id else {},
        )
        echo: dict[str, Any] = {
            "type": "message",
            "id": None,
            "sender": "user",
            "text": text,
            "buttons": [],
            "ts": self.runtime.clock.now().isoformat(),
            "client_id": client_id,
        }
        # the sender's own tab shows it at once; other tabs of the same visitor see it too
        await self.hub.push(visitor_id, echo)
        await ws.send_json({"type": "typing", "on": True})
        try:
            result = await self.runtime.engine.handle(inbound)
        except Exception:
            log.exception("turn failed for web visitor %s", visitor_id)
            await ws.send_json({"type": "typing", "on": False})
            await _error(
                ws, "internal", "Sorry, something went wrong. Please send it again.", client_id
            )
            return
        await ws.send_json({"type": "typing", "on": False})
        await ws.send_json(
            {
                "type": "ack",
                "client_id": client_id,
                "id": result.message_id,
                "duplicate": result.duplicate,
            }
        )


async def _error(ws: WebSocket, code: str, message: str, client_id: str | None = None) -> None:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if client_id:
        frame["client_id"] = client_id
    await ws.send_json(frame)
