"""Telegram, through python-telegram-bot: long polling (default) or a webhook.

Inbound: a text message or a button press becomes an :class:`~bot.types.Inbound`; ``/start``
with a deep-link payload carries it in ``metadata["start_payload"]`` (the lifecycle feature links
the chat to a known contact); ``/stop`` is an opt-out. Outbound: :class:`TelegramSender` sends
``Outbound`` as ``sendMessage`` with an inline keyboard, split at Telegram's 4096 characters;
platform errors map to the delivery worker's retry rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    TelegramError,
    TimedOut,
)
from telegram.error import (
    RetryAfter as TgRetryAfter,
)
from telegram.request import HTTPXRequest

from bot.ratelimit import Rate, RateLimiter
from bot.runtime import Runtime
from bot.types import (
    Delivery,
    Inbound,
    PermanentError,
    RetryAfter,
    SendResult,
    TransientError,
    Unreachable,
)

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_TEXT = 4096
MAX_CALLBACK = 64  # bytes of callback_data


def callback_data(payload: str) -> str:
    """Telegram allows 64 bytes of callback data; longer payloads travel as a digest."""
    if len(payload.encode()) <= MAX_CALLBACK:
        return payload
    return "#" + hashlib.sha256(payload.encode()).hexdigest()[:40]


class TelegramSender:
    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.long_payloads: dict[str, str] = {}  # digest -> payload (buttons over 64 bytes)

    async def send(self, delivery: Delivery) -> SendResult:
        m = delivery.message
        markup = None
        if m.buttons:
            rows = []
            for b in m.buttons:
                if b.url:
                    rows.append([InlineKeyboardButton(b.title, url=b.url)])
                else:
                    data = callback_data(b.payload)
                    if data != b.payload:
                        self.long_payloads[data] = b.payload
                    rows.append([InlineKeyboardButton(b.title, callback_data=data)])
            markup = InlineKeyboardMarkup(rows)
        # the engine splits long texts into several outbox rows (Engine.text_limits)
        try:
            msg = await self.bot.send_message(
                chat_id=delivery.address, text=m.text[:MAX_TEXT], reply_markup=markup
            )
        except TgRetryAfter as e:
            secs = (
                e.retry_after.total_seconds()
                if hasattr(e.retry_after, "total_seconds")
                else e.retry_after
            )
            raise RetryAfter(float(secs)) from e
        except Forbidden as e:
            raise Unreachable(e.message) from e
        except BadRequest as e:
            if "chat not found" in e.message.lower():
                raise Unreachable(e.message) from e
            raise PermanentError(e.message) from e
        except (TimedOut, NetworkError) as e:
            raise TransientError(f"{type(e).__name__}: {e.message}") from e
        except TelegramError as e:
            raise TransientError(e.message) from e
        return SendResult(platform_message_id=str(msg.message_id))


class TelegramChannel:
    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        assert s.telegram_token
        self.runtime = runtime
        kwargs: dict[str, Any] = {}
        if s.telegram_api_url:
            kwargs["base_url"] = s.telegram_api_url.rstrip("/") + "/bot"
            kwargs["base_file_url"] = s.telegram_api_url.rstrip("/") + "/file/bot"
        self.bot = Bot(
            s.telegram_token,
            request=HTTPXRequest(connection_pool_size=64, read_timeout=15, write_timeout=15),
            get_updates_request=HTTPXRequest(read_timeout=40),
            **kwargs,
        )
        self.sender = TelegramSender(self.bot)
        self.mode = s.telegram_mode
        self.secret = s.telegram_webhook_secret
        self._offset = 0
        self._stop = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        await self.bot.initialize()
        s = self.runtime.settings
        if self.mode == "webhook":
            if not s.public_url:
                raise ValueError("CONCIERGE_TELEGRAM_MODE=webhook needs CONCIERGE_PUBLIC_URL")
            await self.bot.set_webhook(
                url=s.public_url.rstrip("/") + "/telegram/webhook", secret_token=self.secret
            )
        else:
            await self.bot.delete_webhook()

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await self.bot.shutdown()

    async def poll(self) -> None:
        """Long polling: each update is handled once; the offset moves only after handling."""
        backoff = 1.0
        while not self._stop.is_set():
            try:
                updates = await self.bot.get_updates(
                    offset=self._offset, timeout=25, allowed_updates=["message", "callback_query"]
                )
                backoff = 1.0
            except (TimedOut, NetworkError) as e:
                log.warning("Telegram polling failed (%s); retrying in %.0fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60)
                continue
            for update in updates:
                try:
                    await self.handle_update(update)
                except Exception:
                    log.exception("Telegram update %s failed", update.update_id)
                self._offset = update.update_id + 1

    # --- translation ---------------------------------------------------------------------
    async def handle_update(self, update: Update) -> None:
        inbound = self.translate(update)
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer()
        if inbound is None:
            return
        typing = asyncio.create_task(self._typing(inbound.reply_address))
        try:
            await self.runtime.engine.handle(inbound)
        finally:
            typing.cancel()

    def translate(self, update: Update) -> Inbound | None:
        if update.callback_query is not None:
            q = update.callback_query
            if q.message is None or q.data is None:
                return None
            payload = self.sender.long_payloads.get(q.data, q.data)
            return Inbound(
                channel=CHANNEL,
                external_id=str(q.from_user.id),
                address=str(q.message.chat.id),
                text=payload,
                payload=payload,
                platform_message_id=f"cb:{q.id}",
                display_name=q.from_user.full_name,
                language=q.from_user.language_code,
            )
        msg = update.message
        if msg is None or msg.text is None or msg.from_user is None:
            return None
        text = msg.text
        metadata: dict[str, Any] = {}
        if text.startswith("/start"):
            payload = text.partition(" ")[2].strip()
            metadata["start_payload"] = payload or None
            if not payload:
                text = "/start"
        return Inbound(
            channel=CHANNEL,
            external_id=str(msg.from_user.id),
            address=str(msg.chat.id),
            text=text,
            payload="/greet" if text == "/start" else None,
            platform_message_id=f"{msg.chat.id}:{msg.message_id}",
            display_name=msg.from_user.full_name,
            language=msg.from_user.language_code,
            metadata=metadata,
        )

    async def _typing(self, chat_id: str) -> None:
        with contextlib.suppress(Exception):
            while True:
                await self.bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
                await asyncio.sleep(4.5)

    # --- webhook ---------------------------------------------------------------------------
    async def webhook(self, request: Request) -> Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not self.secret or not hmac.compare_digest(given, self.secret):
            return JSONResponse({"error": "bad or missing secret token"}, status_code=403)
        try:
            data = await request.json()
            update = Update.de_json(data, self.bot)
        except Exception:
            return JSONResponse({"error": "body is not a Telegram update"}, status_code=400)
        if update is None:
            return JSONResponse({"error": "body is not a Telegram update"}, status_code=400)
        await self.handle_update(update)
        return JSONResponse({"ok": True})


def limiter() -> RateLimiter:
    """About 1 message a second per chat, 30 a second overall (Telegram's limits)."""
    return RateLimiter(per_address=Rate(1.0, burst=3), overall=Rate(30.0, burst=30))


def routes(runtime: Runtime) -> list[BaseRoute]:
    """Wire Telegram when a token is set: sender, polling or webhook route."""
    if not runtime.settings.telegram_token:
        return []
    channel = TelegramChannel(runtime)
    runtime.add_sender(channel.sender, limiter())
    runtime.engine.text_limits[CHANNEL] = MAX_TEXT
    runtime.on_start(channel.start)
    runtime.on_stop(channel.stop)
    runtime.telegram = channel  # type: ignore[attr-defined]
    if channel.mode == "polling":
        runtime.add_background(channel.poll)
        return []
    return [Route("/telegram/webhook", channel.webhook, methods=["POST"])]
