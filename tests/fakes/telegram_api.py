"""A fake Telegram Bot API: ``/bot<token>/<method>``, the answers python-telegram-bot expects."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, read_params

BOT_USER = {
    "id": 999000,
    "is_bot": True,
    "first_name": "Concierge",
    "username": "concierge_test_bot",
}


class FakeTelegram(FakeServer):
    def __init__(self, token: str = "123456:TEST") -> None:
        super().__init__()
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []  # the messages sendMessage made, as returned
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._new_update: asyncio.Event | None = None
        self.webhook_url = ""
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle)

    @property
    def base_url(self) -> str:
        """For python-telegram-bot's ``base_url`` (it appends the token)."""
        return f"{self.url}/bot"

    # --- what users do -------------------------------------------------------------------
    def push_update(self, update: dict[str, Any]) -> int:
        update = {"update_id": next(self._update_ids), **update}
        self.updates.append(update)
        if self._new_update is not None:
            self.loop.call_soon_threadsafe(self._new_update.set)
        return int(update["update_id"])

    def message_ids(self, chat_id: int | str) -> list[int]:
        """The ids of the messages the bot sent to a chat, oldest first."""
        return [m["message_id"] for m in list(self.sent) if str(m["chat"]["id"]) == str(chat_id)]

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        return [
            str(c.params.get("text"))
            for c in self.calls_to("sendMessage")
            if chat_id is None or str(c.params.get("chat_id")) == str(chat_id)
        ]

    # --- the API ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await read_params(request)
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        sc = self._take_scenario(method, params)
        if method != "getUpdates":
            self.record(method, params, ok=sc is None or sc.kind == "slow", request=request)
        if sc is not None:
            if sc.kind == "slow":
                await asyncio.sleep(sc.delay)
            elif sc.kind == "hang":
                await self.hang(sc)
                return web.Response(status=504)
            elif sc.kind == "409":
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 409,
                        "description": "Conflict: terminated by other getUpdates request; make "
                        "sure that only one bot instance is running",
                    },
                    status=409,
                )
            elif sc.kind == "429":
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {sc.retry_after:g}",
                        "parameters": {"retry_after": sc.retry_after},
                    },
                    status=429,
                )
            elif sc.kind == "403":
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 403,
                        "description": "Forbidden: bot was blocked by the user",
                    },
                    status=403,
                )
            elif sc.kind == "500":
                return web.json_response(
                    {"ok": False, "error_code": 500, "description": "Internal Server Error"},
                    status=500,
                )
            elif sc.kind == "reset":
                assert request.transport is not None
                request.transport.close()
                return web.Response()
            elif sc.kind == "custom":
                return web.json_response(sc.body, status=sc.status)
        if self.delay and method != "getUpdates":
            await asyncio.sleep(self.delay)
        handler = getattr(self, f"m_{method}", None)
        if handler is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": f"Not Found: method {method}"},
                status=404,
            )
        result = await handler(params)
        return web.json_response({"ok": True, "result": result})

    async def m_getMe(self, p: dict[str, Any]) -> Any:
        return BOT_USER

    async def m_getUpdates(self, p: dict[str, Any]) -> Any:
        offset = int(p.get("offset") or 0)
        timeout = float(p.get("timeout") or 0)
        if self._new_update is None:
            self._new_update = asyncio.Event()
        deadline = time.monotonic() + timeout
        while True:
            pending = [u for u in self.updates if u["update_id"] >= offset]
            if offset:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            if pending or time.monotonic() >= deadline:
                if pending:
                    self.record("getUpdates", p)
                return pending[: int(p.get("limit") or 100)]
            self._new_update.clear()
            try:
                await asyncio.wait_for(
                    self._new_update.wait(), max(0.0, deadline - time.monotonic())
                )
            except TimeoutError:
                pass

    async def m_sendMessage(self, p: dict[str, Any]) -> Any:
        chat_id = p.get("chat_id")
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {
                "id": int(chat_id) if str(chat_id).lstrip("-").isdigit() else chat_id,
                "type": "private",
            },
            "from": BOT_USER,
            "text": p.get("text", ""),
        }
        if p.get("reply_markup"):
            msg["reply_markup"] = p["reply_markup"]
        self.sent.append(msg)
        return msg

    async def m_sendChatAction(self, p: dict[str, Any]) -> Any:
        return True

    async def m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        return True

    async def m_setWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook_url = str(p.get("url", ""))
        return True

    async def m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook_url = ""
        return True

    async def m_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": 0}

    async def m_editMessageReplyMarkup(self, p: dict[str, Any]) -> Any:
        return True


if __name__ == "__main__":
    FakeTelegram().serve_forever()
