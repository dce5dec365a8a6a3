"""WebSocket chat for the widget (protocol in CONTRIBUTING.md, "Web chat protocol")."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from bot.contacts import link_user, purge_anonymous, resolve_identity
from bot.greeting import frame as greeting_frame
from bot.greeting import greetings_of
from bot.runtime import Runtime
from bot.storage.models import Contact, Identity, Message
from bot.types import Capabilities, Delivery, Inbound, SendResult, TransientError
from channels.web.fanout import PgFanout
from channels.web.identity import VisitorTokens, verify_user_hash
from channels.web.rest import MAX_DEPTH, text_problem

log = logging.getLogger(__name__)

HISTORY_LIMIT = 100
_LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?")
# the identity (channel, external_id) given as parameters
_IDENTITY = (
    Identity.channel == bindparam("channel"),
    Identity.external_id == bindparam("external_id"),
)
_CONTACT_OF = select(Identity.contact_id).where(*_IDENTITY)
_OWNER = select(Contact.user_id).join(Identity, Identity.contact_id == Contact.id).where(*_IDENTITY)
CHANNEL = "web"
CAPABILITIES = Capabilities(push=True, buttons=True)


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
    # pushed to an open socket, or found in the history when the visitor comes back
    capabilities = CAPABILITIES
    # sends on the wire before their "sent" record at once: a push repeated after a crash
    # carries the same message id, which the widget shows once
    in_doubt = 32

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


class VisitorLimits:
    """Token buckets shared by every socket of the process: one per visitor (their token: a
    reconnect, a second tab, a new socket keep the same bucket) and one per IP address (a
    visitor who drops the token to become someone new still shares their address's)."""

    MAX_KEYS = 100_000  # beyond this, the buckets that are full again are forgotten

    def __init__(
        self, per_visitor: int, per_ip: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_visitor, self.per_ip = per_visitor, per_ip
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, stamp)

    def _level(self, key: str, per_minute: int, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (float(per_minute), now))
        return min(float(per_minute), tokens + (now - stamp) * per_minute / 60.0)

    def take(self, visitor_id: str, ip: str) -> bool:
        """One message from ``visitor_id`` at ``ip``, if both buckets have room."""
        now = self.clock()
        v_key, ip_key = "v:" + visitor_id, "ip:" + ip
        v = self._level(v_key, self.per_visitor, now)
        i = self._level(ip_key, self.per_ip, now)
        if v < 1 or i < 1:
            return False
        if len(self._buckets) >= self.MAX_KEYS:
            self._forget_full(now)
        self._buckets[v_key] = (v - 1, now)
        self._buckets[ip_key] = (i - 1, now)
        return True

    def _forget_full(self, now: float) -> None:
        for key, (tokens, stamp) in list(self._buckets.items()):
            cap = self.per_visitor if key.startswith("v:") else self.per_ip
            if tokens + (now - stamp) * cap / 60.0 >= cap:
                del self._buckets[key]


class WebChat:
    def __init__(self, runtime: Runtime, hub: Hub) -> None:
        self.runtime = runtime
        self.hub = hub
        clock = runtime.clock
        self.tokens = VisitorTokens(
            runtime.secret_key,
            max_age=runtime.settings.web_visitor_token_days * 86400,
            clock=lambda: clock.now().timestamp(),
        )
        self.limits = VisitorLimits(
            runtime.settings.web_rate_limit_per_minute,
            runtime.settings.web_rate_limit_per_ip_per_minute,
        )
        runtime.add_background(self.purge_loop)
        greetings_of(runtime)  # every language's greeting, once

    async def purge_loop(self) -> None:
        """Every CONCIERGE_WEB_PURGE_INTERVAL_SECONDS: delete the anonymous visitors who never
        wrote and were not seen for CONCIERGE_WEB_ANONYMOUS_RETENTION_DAYS."""
        settings = self.runtime.settings
        keep = timedelta(days=settings.web_anonymous_retention_days)
        while True:
            try:
                total = 0
                while True:  # in slices: the database is not held for a big backlog
                    before = self.runtime.clock.now() - keep
                    async with self.runtime.db.session() as s:
                        n = await purge_anonymous(s, channel=CHANNEL, before=before)
                    total += n
                    if n < 1000:
                        break
                if total:
                    log.info("deleted %d anonymous web visitors who never wrote", total)
            except Exception:  # the database is away: next round
                log.exception("purging anonymous web visitors failed")
            await asyncio.sleep(settings.web_purge_interval_seconds)

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
        lang = q.get("lang") or None
        if lang is not None and not _LANG.fullmatch(lang):
            lang = None  # a language tag (en, pt-BR), nothing else reaches the database
        user_id, given_hash = q.get("user_id") or None, q.get("user_hash") or ""
        shop_user = (
            user_id
            if user_id and verify_user_hash(settings.web_identity_secret, user_id, given_hash)
            else None
        )
        visitor_id = await self._returning(self.tokens.verify(q.get("token")), shop_user)
        known = visitor_id is not None
        # a fresh token every session: the widget keeps the newest, its age counts from now
        visitor_id, token = self.tokens.issue(visitor_id)
        now = self.runtime.clock.now()
        # listen before reading the history: a reply sent meanwhile is held, then follows it
        self.hub.add(visitor_id, ws, hold=True)
        try:
            if user_id and shop_user is None:
                await _error(
                    ws, "bad_identity", "user_hash does not match user_id; chatting anonymously"
                )
            await self._session(ws, visitor_id, token, lang, shop_user, known, now)
            ip = ws.client.host if ws.client else "?"
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                raw = message.get("text")
                if raw is None:  # a binary frame: the protocol is JSON text
                    await _error(ws, "bad_frame", "binary frames are not accepted; send JSON text")
                    continue
                await self._frame(ws, visitor_id, raw, lang, ip)
        except WebSocketDisconnect:
            pass
        except RuntimeError:
            # the visitor left while their turn was still answering: nothing to send it to
            if WebSocketState.DISCONNECTED not in (ws.client_state, ws.application_state):
                raise
        finally:
            self.hub.remove(visitor_id, ws)

    async def _returning(self, visitor_id: str | None, shop_user: str | None) -> str | None:
        """``visitor_id`` (from a genuine, unexpired token) if its conversation may be shown
        to whoever is connecting now: not when it belongs to an identified customer and the
        page does not identify that same customer (the next person at a shared computer, a
        customer who logged out, another account). They start a new visitor session."""
        if visitor_id is None:
            return None
        async with self.runtime.db.session() as s:
            owner = (
                await s.execute(_OWNER, {"channel": CHANNEL, "external_id": visitor_id})
            ).first()
        if owner is not None and owner[0] is not None and owner[0] != shop_user:
            return None
        return visitor_id

    async def _session(
        self,
        ws: WebSocket,
        visitor_id: str,
        token: str,
        lang: str | None,
        shop_user: str | None,
        known: bool,
        now: Any,
    ) -> None:
        """The session and history frames (then whatever was held meanwhile). An anonymous
        visitor is written to the database with their first message, not here: a connect
        alone leaves no row."""
        settings = self.runtime.settings
        history: list[dict[str, Any]] = []
        greets = greetings_of(self.runtime)
        hello = None
        contact: Contact | None = None
        if shop_user is not None or known:
            async with self.runtime.db.session() as s:
                contact_id: int | None = None
                if shop_user is not None:
                    _, identity = await resolve_identity(
                        s, channel=CHANNEL, external_id=visitor_id, now=now, language=lang
                    )
                    contact = await link_user(s, identity, shop_user, now)
                    contact_id = contact.id
                else:
                    contact_id = (
                        await s.execute(
                            _CONTACT_OF, {"channel": CHANNEL, "external_id": visitor_id}
                        )
                    ).scalar_one_or_none()
                if contact_id is not None:
                    rows = (
                        await s.execute(
                            select(Message)
                            .where(Message.contact_id == contact_id)
                            .order_by(Message.id.desc())
                            .limit(HISTORY_LIMIT)
                        )
                    ).scalars()
                    history = [message_frame(m) for m in reversed(list(rows))]
                if not history:  # the opening message of an empty chat
                    hello = await greets.for_contact(s, contact, greets.language(lang, contact))
        if hello is None and not history:  # anonymous: the greeting made once at startup
            hello = greets.anonymous.get(greets.language(lang, None))
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
        self, ws: WebSocket, visitor_id: str, raw: str, lang: str | None, ip: str
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
        except RecursionError:
            await _error(ws, "bad_frame", f"nested deeper than {MAX_DEPTH} levels")
            return
        problem = text_problem(frame)
        if problem:
            await _error(ws, "bad_frame", problem)
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
        if not self.limits.take(visitor_id, ip):
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
