"""Slack, through slack-bolt (async): Events API over HTTP (signed) or Socket Mode.

Inbound: direct messages and mentions become an :class:`~bot.types.Inbound`; a press on one of
our Block Kit buttons carries the button's payload. Bolt verifies ``X-Slack-Signature`` (and its
5-minute window); an event is acknowledged once its turn is stored (a turn takes milliseconds,
well inside Slack's 3 seconds), so an event Slack saw acknowledged is never lost, and one that
failed is sent again by Slack. A retried event (``X-Slack-Retry-Num``, or a Socket Mode
envelope sent again) has the same ``event_id``: it is recorded as seen in the same transaction
as its turn (or staff reply), so a retry after that is dropped even when it reaches another
process or arrives after a restart, and a retry after a crash before it is processed.
Outbound: :class:`SlackSender` posts ``chat.postMessage`` with Block Kit buttons.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from bot.handoff.service import HandoffService
from bot.handoff.staff import USAGE
from bot.ratelimit import Rate, RateLimiter
from bot.runtime import Runtime
from bot.storage.seen import seen_before
from bot.types import (
    Capabilities,
    Delivery,
    Inbound,
    PermanentError,
    RetryAfter,
    SendResult,
    TransientError,
    Unreachable,
)

log = logging.getLogger(__name__)

CHANNEL = "slack"
MAX_TEXT = 3000  # a section block's text limit
CAPABILITIES = Capabilities(push=True, text_limit=MAX_TEXT, buttons=True, threads=True)
MAX_BODY = 1024 * 1024  # Slack's requests are a few KB; anything near this is not Slack
ACTION_PREFIX = "concierge:"
_MENTION = re.compile(r"<@[A-Z0-9]+>\s*")
SOCKET = "slack_socket"  # the Socket Mode connection's name in /healthz and /metrics
SOCKET_CHECK = 1.0  # how often the connection's state is looked at, seconds
SOCKET_SDK_GRACE = 30.0  # a lost session the SDK has not restored in this time is reopened
UNREACHABLE = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "account_inactive",
    "user_not_found",
    "cannot_dm_bot",
}


def web_client(runtime: Runtime) -> AsyncWebClient:
    s = runtime.settings
    kwargs: dict[str, Any] = {"token": s.slack_bot_token, "timeout": s.delivery_send_timeout}
    if s.slack_api_url:
        kwargs["base_url"] = s.slack_api_url.rstrip("/") + "/"
    return AsyncWebClient(**kwargs)


def blocks_for(text: str, buttons: list[dict[str, str]]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if buttons:
        elements = []
        for i, b in enumerate(buttons[:25]):
            el: dict[str, Any] = {
                "type": "button",
                "text": {"type": "plain_text", "text": b["title"][:75], "emoji": True},
                "action_id": f"{ACTION_PREFIX}{i}",
            }
            if b.get("url"):
                el["url"] = b["url"]
            else:
                el["value"] = b["payload"][:2000]
            elements.append(el)
        blocks.append({"type": "actions", "elements": elements})
    return blocks


class SlackSender:
    channel = CHANNEL
    capabilities = CAPABILITIES

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def send(self, delivery: Delivery) -> SendResult:
        m = delivery.message
        blocks = m.metadata.get("blocks") or blocks_for(
            _escape(m.text), [b.to_dict() for b in m.buttons]
        )
        # the fallback text is mrkdwn too (notifications, old clients): escaped like the blocks,
        # so a customer's "<!channel>" or "<@U123>" is text, never a ping
        kwargs: dict[str, Any] = {
            "channel": delivery.address,
            "text": _escape(m.text),
            "blocks": blocks,
        }
        if m.thread_id:
            kwargs["thread_ts"] = m.thread_id
        try:
            resp = await self.client.chat_postMessage(**kwargs)
        except SlackApiError as e:
            error = str(e.response.get("error", "")) if e.response is not None else ""
            status = e.response.status_code if e.response is not None else 0
            if status == 429 or error == "ratelimited":
                retry = float(e.response.headers.get("Retry-After", 1)) if e.response else 1.0
                raise RetryAfter(retry) from e
            if error in UNREACHABLE:
                raise Unreachable(error) from e
            if status >= 500 or error in ("internal_error", "fatal_error", "service_unavailable"):
                raise TransientError(error or f"HTTP {status}") from e
            raise PermanentError(error or f"HTTP {status}") from e
        except (OSError, TimeoutError, aiohttp.ClientError) as e:  # reset, refused, timed out
            raise TransientError(f"{type(e).__name__}: {e}") from e
        return SendResult(platform_message_id=str(resp.get("ts")))


def _escape(text: str) -> str:
    """Slack's mrkdwn control characters (``&``, ``<``, ``>``: all Slack asks to escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel:
    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.client = web_client(runtime)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=s.slack_signing_secret or "",
            # acknowledge after the listener: an acknowledged event is a stored turn
            process_before_response=True,
            request_verification_enabled=bool(s.slack_signing_secret),
        )
        self.handler = AsyncSlackRequestHandler(self.app)
        self.verifier = SignatureVerifier(s.slack_signing_secret or "-")
        self.sender = SlackSender(self.client)
        self.bot_user_id: str | None = None
        self._socket: Any = None
        self.app.use(self._once)
        self.app.event("message")(self._on_message)
        self.app.event("app_mention")(self._on_mention)
        self.app.action(re.compile("^" + re.escape(ACTION_PREFIX)))(self._on_action)
        self.app.command("/concierge")(self._on_command)
        try:
            from channels import slack_internal
        except ImportError:  # the internal-updates feature is not installed
            pass
        else:
            slack_internal.register(self.app, runtime)

    async def start(self) -> None:
        try:
            auth = await self.client.auth_test()
            self.bot_user_id = auth.get("user_id")
        except Exception as e:  # Slack unreachable at start: keep going, delivery retries
            log.warning("Slack auth.test failed: %s", e)
        if self.runtime.settings.slack_app_token:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            # apps.connections.open goes to the configured Web API too (the app token is its own)
            opener = AsyncWebClient(base_url=self.client.base_url)
            self._socket = AsyncSocketModeHandler(
                self.app, self.runtime.settings.slack_app_token, web_client=opener
            )
            # connected (and reconnected) in the background: Slack away at start is waited
            # out, not a failed start
            self.runtime.health.pending(SOCKET, "socket mode: connecting to Slack")
            self.runtime.add_background(self._keep_socket)

    async def _keep_socket(self) -> None:
        """Socket Mode's connection. The SDK opens it (retrying on any error) and reopens a
        lost session by itself; this watches it, reports the state to ``/healthz`` and
        ``/metrics`` (``slack_socket``), and opens a new session should the SDK not have
        restored one in :data:`SOCKET_SDK_GRACE` seconds."""
        health = self.runtime.health
        client = self._socket.client
        loop = asyncio.get_running_loop()
        connecting: asyncio.Task[None] | None = None
        lost_since: float | None = None
        backoff = SOCKET_CHECK
        try:
            while True:
                if await client.is_connected():
                    if health.state.get(SOCKET, "") is not None:
                        health.ok(SOCKET)
                    lost_since = None
                else:
                    now = loop.time()
                    if health.state.get(SOCKET, "") is None:  # it was up
                        health.failing(SOCKET, "socket mode: connection lost, reconnecting")
                    if lost_since is None:
                        lost_since = now
                    first = connecting is None
                    if (first or now - lost_since > SOCKET_SDK_GRACE) and (
                        connecting is None or connecting.done()
                    ):
                        try:  # the WebSocket's address first: its failure is the reason
                            client.wss_uri = await client.issue_new_wss_url()
                        except Exception as e:
                            health.failing(SOCKET, f"socket mode: {type(e).__name__}: {e}")
                            log.warning("Slack Socket Mode: %s; again in %.0fs", e, backoff)
                            await asyncio.sleep(backoff)
                            backoff = min(backoff * 2, 60.0)
                            continue
                        connecting = loop.create_task(client.connect())
                        lost_since = now
                        backoff = SOCKET_CHECK
                await asyncio.sleep(SOCKET_CHECK)
        finally:
            if connecting is not None:
                connecting.cancel()

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()

    # --- listeners -------------------------------------------------------------------------
    async def _once(
        self, body: dict[str, Any], next_: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Drop an event delivered before (Slack's retries), whatever listener it is for."""
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and await seen_before(
            self.runtime.db, CHANNEL, str(event_id), self.runtime.clock.now()
        ):
            log.info("Slack event %s was delivered before: dropped", event_id)
            return BoltResponse(status=200, body="")
        await next_()
        return None

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("subtype") or event.get("bot_id"):
            return
        if self.bot_user_id and event.get("user") == self.bot_user_id:
            return
        staff = self.runtime.settings.slack_staff_channel
        if staff and event.get("channel") == staff:
            if event.get("thread_ts") and event.get("user"):
                await self._staff_reply(event, body.get("event_id"))
            return
        if event.get("channel_type") != "im":
            return
        await self._handle(event, body, event.get("text") or "")

    async def _staff_reply(self, event: dict[str, Any], event_id: str | None) -> None:
        """A staff member writes in a handoff's thread: the customer gets it (unless ``//``)."""
        svc = self.runtime.maybe_service(HandoffService)
        if svc is None:
            return
        name = await self._user_name(str(event["user"]))
        await svc.staff.reply(
            thread=(str(event["channel"]), str(event["thread_ts"])),
            staff=name,
            text=event.get("text") or "",
            delivery=(CHANNEL, str(event_id)) if event_id else None,
        )

    async def _user_name(self, user: str) -> str:
        try:
            info = await self.client.users_info(user=user)
            u = info.get("user") or {}
            profile = u.get("profile") or {}
            return str(profile.get("display_name") or u.get("real_name") or u.get("name") or user)
        except Exception:
            return user

    async def _on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        """``/concierge resolve|take|handback <id>``: the handoff feature's staff command."""
        await ack()
        svc = self.runtime.maybe_service(HandoffService)
        if svc is None:
            await respond(USAGE)
            return
        user = str(command.get("user_id"))
        await respond(
            await svc.staff.command(command.get("text") or "", lambda: self._user_name(user))
        )

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        text = _MENTION.sub("", event.get("text") or "").strip()
        await self._handle(event, body, text, thread=event.get("thread_ts") or event.get("ts"))

    async def _handle(
        self, event: dict[str, Any], body: dict[str, Any], text: str, thread: str | None = None
    ) -> None:
        user = event.get("user")
        if not user or not text:
            return
        msg_id = event.get("client_msg_id") or f"{event.get('channel')}:{event.get('ts')}"
        await self.runtime.engine.handle(
            Inbound(
                channel=CHANNEL,
                external_id=str(user),
                address=str(event.get("channel")),
                text=text,
                platform_message_id=str(msg_id),
                thread_id=thread,
                metadata={"team": body.get("team_id"), "event_id": body.get("event_id")},
                delivery_id=str(body["event_id"]) if body.get("event_id") else None,
            )
        )

    async def _on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = (body.get("user") or {}).get("id")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        payload = action.get("value")
        if not user or not channel or not payload:
            return
        svc = self.runtime.maybe_service(HandoffService)
        if svc is not None and await svc.staff.button(payload, lambda: self._user_name(str(user))):
            return
        title = (action.get("text") or {}).get("text") or payload
        await self.runtime.engine.handle(
            Inbound(
                channel=CHANNEL,
                external_id=str(user),
                address=str(channel),
                text=str(title),
                payload=str(payload),
                platform_message_id=f"action:{body.get('trigger_id') or action.get('action_ts')}",
            )
        )

    async def endpoint(self, request: Request) -> Response:
        """Check the signature on the raw bytes before bolt parses anything: an unsigned body,
        however malformed or large, gets a 401 (or 413) and is neither parsed nor logged."""
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            return JSONResponse({"error": f"body larger than {MAX_BODY} bytes"}, status_code=413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return JSONResponse(
                    {"error": f"body larger than {MAX_BODY} bytes"}, status_code=413
                )
        ts = request.headers.get("x-slack-request-timestamp", "")
        sig = request.headers.get("x-slack-signature", "")
        if not (ts.isdigit() and self.verifier.is_valid(body, ts, sig)):
            return JSONResponse(
                {"error": "missing or invalid X-Slack-Signature / X-Slack-Request-Timestamp"},
                status_code=401,
            )
        sent = False

        async def replay() -> Message:  # bolt reads the body again: the bytes already read
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        response: Response = await self.handler.handle(Request(request.scope, replay))
        return response


def limiter() -> RateLimiter:
    """About one message a second per channel (Slack's chat.postMessage guidance)."""
    return RateLimiter(per_address=Rate(1.0, burst=3), overall=Rate(50.0, burst=50))


def routes(runtime: Runtime) -> list[BaseRoute]:
    """Wire Slack when a bot token is set: sender, events and interactivity endpoints."""
    s = runtime.settings
    if not s.slack_bot_token:
        return []
    if not s.slack_signing_secret and not s.slack_app_token:
        raise ValueError(
            "CONCIERGE_SLACK_BOT_TOKEN needs CONCIERGE_SLACK_SIGNING_SECRET (HTTP events) "
            "or CONCIERGE_SLACK_APP_TOKEN (Socket Mode)"
        )
    channel = SlackChannel(runtime)
    runtime.add_sender(channel.sender, limiter())
    runtime.on_start(channel.start)
    runtime.on_stop(channel.stop)
    runtime.register(channel)
    if not s.slack_signing_secret:  # Socket Mode only: no HTTP endpoint to forge requests to
        return []
    return [
        Route("/slack/events", channel.endpoint, methods=["POST"]),
        Route("/slack/interactivity", channel.endpoint, methods=["POST"]),
        Route("/slack/commands", channel.endpoint, methods=["POST"]),
    ]
