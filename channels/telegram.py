"""Telegram, through python-telegram-bot: long polling (default) or a webhook.

Inbound: a text message or a button press becomes an :class:`~bot.types.Inbound`; ``/start``
with a deep-link payload carries it in ``metadata["start_payload"]`` (the lifecycle feature links
the chat to a known contact); ``/stop`` is an opt-out. Updates of different chats are handled
at the same time, those of one chat in order. Outbound: :class:`TelegramSender` sends
``Outbound`` as ``sendMessage`` with an inline keyboard; platform errors map to the delivery
worker's retry rules (429 -> wait ``retry_after``, 403 -> unreachable, 5xx/network -> retry,
400 -> dead letter).

A button payload longer than Telegram's 64 bytes of ``callback_data`` travels as a reference
(``~<button index>``); a press resolves it from the outbox row that sent the message, so it
still works after a restart and in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import Bot, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    ChatMigrated,
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
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import OutboxMessage
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

# python-telegram-bot 22 moves time spans (``RetryAfter.retry_after``) from int seconds to
# timedelta and warns on every 429 until a program opts in; we read both forms.
os.environ.setdefault("PTB_TIMEDELTA", "true")

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_TEXT = 4096
# a bot writes first once the person pressed Start; inline keyboards; no threads in a DM
CAPABILITIES = Capabilities(push=True, text_limit=MAX_TEXT, buttons=True, threads=False)
MAX_CALLBACK = 64  # bytes of callback_data
REF = "~"  # callback_data "~3": the payload of button 3 of the message, kept in the outbox
# Telegram's limits: about 1 message a second in a chat, 20 a minute in a group, 30/s overall
PER_CHAT = Rate(1.0, burst=3)
PER_GROUP = Rate(20 / 60, burst=3)
OVERALL = Rate(29.0, burst=1)  # so never more than 30 in any one second
POLL_BACKOFF = (1.0, 60.0)  # polling's first and longest wait after an error, seconds


def _seconds(wait: float | timedelta) -> float:
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


def callback_data(payload: str, index: int) -> str:
    """What a button carries: the payload itself, or a reference when it does not fit."""
    if len(payload.encode()) <= MAX_CALLBACK and not payload.startswith(REF):
        return payload
    return f"{REF}{index}"


def make_bot(settings: Settings) -> Bot:
    """A python-telegram-bot ``Bot`` for the configured token and Bot API base URL."""
    if not settings.telegram_token:
        raise ValueError("CONCIERGE_TELEGRAM_TOKEN is not set")
    kwargs: dict[str, Any] = {}
    if settings.telegram_api_url:
        base = settings.telegram_api_url.rstrip("/")
        kwargs["base_url"] = base + "/bot"
        kwargs["base_file_url"] = base + "/file/bot"
    return Bot(
        settings.telegram_token,
        request=HTTPXRequest(
            connection_pool_size=64,
            read_timeout=settings.delivery_send_timeout,
            write_timeout=settings.delivery_send_timeout,
        ),
        get_updates_request=HTTPXRequest(read_timeout=40),
        **kwargs,
    )


class TelegramSender:
    channel = CHANNEL
    capabilities = CAPABILITIES

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, delivery: Delivery) -> SendResult:
        m = delivery.message
        markup = None
        if m.buttons:
            rows = []
            for i, b in enumerate(m.buttons):
                if b.url:
                    rows.append([InlineKeyboardButton(b.title, url=b.url)])
                else:
                    data = callback_data(b.payload, i)
                    rows.append([InlineKeyboardButton(b.title, callback_data=data)])
            markup = InlineKeyboardMarkup(rows)
        # the engine splits long texts into several outbox rows (Engine.text_limits)
        chat_id: int | str = delivery.address
        try:
            try:
                msg = await self.bot.send_message(
                    chat_id=chat_id, text=m.text[:MAX_TEXT], reply_markup=markup
                )
            except ChatMigrated as e:  # a group became a supergroup: it has a new id
                msg = await self.bot.send_message(
                    chat_id=e.new_chat_id, text=m.text[:MAX_TEXT], reply_markup=markup
                )
        except TgRetryAfter as e:
            raise RetryAfter(_seconds(e.retry_after)) from e
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


def limiter(
    per_chat: Rate | None = PER_CHAT,
    per_group: Rate | None = PER_GROUP,
    overall: Rate | None = OVERALL,
) -> RateLimiter:
    """About 1 message a second per chat, 20 a minute per group (negative chat ids), 30 a
    second overall (Telegram's limits)."""

    def rate_of(address: str) -> Rate | None:
        return per_group if address.startswith("-") else per_chat

    return RateLimiter(per_address=per_chat, overall=overall, rate_of=rate_of)


async def button_payload(db: Database, chat_id: str, message_id: int, index: int) -> str | None:
    """The payload of button ``index`` of the message we sent as ``message_id`` to a chat."""
    async with db.session() as s:
        payload = (
            await s.execute(
                select(OutboxMessage.payload)
                .where(
                    OutboxMessage.channel == CHANNEL,
                    OutboxMessage.address == chat_id,
                    OutboxMessage.platform_message_id == str(message_id),
                )
                .order_by(OutboxMessage.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    buttons = (payload or {}).get("buttons") or []
    if 0 <= index < len(buttons):
        return str(buttons[index].get("payload", buttons[index].get("title")))
    return None


def _button_title(q: CallbackQuery) -> str | None:
    """The pressed button's label, from the keyboard Telegram sends along with the press."""
    msg = q.message
    markup = getattr(msg, "reply_markup", None)
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for b in row:
            if b.callback_data == q.data:
                return str(b.text)
    return None


def _chat_key(update: Update) -> str:
    chat = update.effective_chat
    return str(chat.id) if chat is not None else f"u{update.update_id}"


class TelegramChannel:
    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.bot = make_bot(s)
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
            if not self.secret:
                raise ValueError(
                    "CONCIERGE_TELEGRAM_MODE=webhook needs CONCIERGE_TELEGRAM_WEBHOOK_SECRET"
                )
            await self.bot.set_webhook(
                url=s.public_url.rstrip("/") + "/telegram/webhook",
                secret_token=self.secret,
                allowed_updates=["message", "callback_query"],
            )
        else:
            await self.bot.delete_webhook()

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await self.bot.shutdown()

    async def poll(self) -> None:
        """Long polling: the offset moves past a batch only after it was stored, so a crash
        (or a database outage) gets the updates again (the engine drops the ones it already
        stored). Any error of ``getUpdates`` (409 Conflict while another instance polls, 429,
        5xx, the network) is waited out with backoff (``retry_after`` when Telegram gives
        one) and polling goes on; ``/healthz`` reports ``degraded`` with the reason meanwhile."""
        health = self.runtime.health
        backoff = POLL_BACKOFF[0]
        while not self._stop.is_set():
            try:
                updates = await self.bot.get_updates(
                    offset=self._offset, timeout=25, allowed_updates=["message", "callback_query"]
                )
            except Exception as e:
                if self._stop.is_set():  # the client was closed under the long poll
                    return
                wait = backoff
                if isinstance(e, TgRetryAfter):
                    wait = max(wait, _seconds(e.retry_after))
                health.failing(CHANNEL, f"getUpdates: {type(e).__name__}: {e}")
                log.warning(
                    "Telegram polling failed (%s: %s); again in %.1fs", type(e).__name__, e, wait
                )
                await self._pause(wait)
                backoff = min(backoff * 2, POLL_BACKOFF[1])
                continue
            if health.state.get(CHANNEL, "") is not None:
                health.ok(CHANNEL)
            if not updates:
                backoff = POLL_BACKOFF[0]
                continue
            failed = await self.handle_batch(updates)
            if failed is None:
                self._offset = updates[-1].update_id + 1
                backoff = POLL_BACKOFF[0]
                continue
            # an update could not be stored (the database is away): it and the ones after it
            # come again, once the database is back
            self._offset = failed
            health.failing(CHANNEL, f"update {failed} could not be stored")
            await self._pause(backoff)
            backoff = min(backoff * 2, POLL_BACKOFF[1])

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def handle_batch(self, updates: Sequence[Update]) -> int | None:
        """Chats at the same time, each chat's updates in order. Returns the first update id
        that could not be stored (to be fetched again), or ``None``."""
        chats: dict[str, list[Update]] = defaultdict(list)
        for u in updates:
            chats[_chat_key(u)].append(u)
        failed: list[int] = []

        async def run(chain: list[Update]) -> None:
            for u in chain:
                try:
                    await self.handle_update(u)
                except (SQLAlchemyError, OSError, TimeoutError) as e:
                    # storage failed: the chat's later updates wait too (their order holds)
                    log.warning("Telegram update %s not stored (%s); fetched again", u.update_id, e)
                    failed.append(u.update_id)
                    return
                except Exception:  # an update we cannot handle at all: not again and again
                    log.exception("Telegram update %s failed", u.update_id)

        await asyncio.gather(*(run(c) for c in chats.values()))
        return min(failed) if failed else None

    # --- translation ---------------------------------------------------------------------
    async def handle_update(self, update: Update) -> None:
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer()
        inbound = await self.translate(update)
        if inbound is None:
            return
        typing = asyncio.create_task(self._typing(inbound.reply_address))
        try:
            await self.runtime.engine.handle(inbound)
        finally:
            typing.cancel()

    async def translate(self, update: Update) -> Inbound | None:
        if update.callback_query is not None:
            return await self._translate_press(update.callback_query)
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

    async def _translate_press(self, q: CallbackQuery) -> Inbound | None:
        if q.message is None or q.data is None:
            return None
        chat_id = str(q.message.chat.id)
        payload: str | None = q.data
        if q.data.startswith(REF) and q.data[1:].isdigit():
            payload = await button_payload(
                self.runtime.db, chat_id, q.message.message_id, int(q.data[1:])
            )
            if payload is None:
                log.warning("button %s of message %s: not ours", q.data, q.message.message_id)
                return None
        assert payload is not None
        return Inbound(
            channel=CHANNEL,
            external_id=str(q.from_user.id),
            address=chat_id,
            text=_button_title(q) or payload,
            payload=payload,
            platform_message_id=f"cb:{q.id}",
            display_name=q.from_user.full_name,
            language=q.from_user.language_code,
        )

    async def _typing(self, chat_id: str) -> None:
        with contextlib.suppress(Exception):
            while True:
                # a quick turn ends before the request is out: it still goes (shielded from
                # the cancel), only the next rounds are cancelled; Telegram clears "typing" when
                # the answer arrives
                await asyncio.shield(
                    self.bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
                )
                await asyncio.sleep(4.5)

    # --- webhook ---------------------------------------------------------------------------
    async def webhook(self, request: Request) -> Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not self.secret or not hmac.compare_digest(given.encode(), self.secret.encode()):
            return JSONResponse({"error": "bad or missing secret token"}, status_code=403)
        try:
            update = Update.de_json(await request.json(), self.bot)
        except Exception:
            update = None
        if update is None:
            return JSONResponse({"error": "body is not a Telegram update"}, status_code=400)
        await self.handle_update(update)
        return JSONResponse({"ok": True})


def routes(runtime: Runtime) -> list[BaseRoute]:
    """Wire Telegram when a token is set: sender, polling or webhook route."""
    if not runtime.settings.telegram_token:
        return []
    channel = TelegramChannel(runtime)
    runtime.add_sender(channel.sender, limiter())
    runtime.on_start(channel.start)
    runtime.on_stop(channel.stop)
    runtime.register(channel)
    if channel.mode == "polling":
        runtime.add_background(channel.poll)
        return []
    return [Route("/telegram/webhook", channel.webhook, methods=["POST"])]
