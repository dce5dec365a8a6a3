"""Factories for platform updates in tests (python-telegram-bot's tests/auxil style)."""

from __future__ import annotations

import itertools
import time
from typing import Any

_ids = itertools.count(1)


def tg_user(
    user_id: int = 4242, first_name: str = "Anna", language_code: str | None = "en"
) -> dict[str, Any]:
    u: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code:
        u["language_code"] = language_code
    return u


def tg_message(
    text: str,
    user_id: int = 4242,
    chat_id: int | None = None,
    first_name: str = "Anna",
    language_code: str | None = "en",
) -> dict[str, Any]:
    """An update with a private text message (``/start x`` gets its bot_command entity)."""
    msg: dict[str, Any] = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "chat": {"id": chat_id or user_id, "type": "private", "first_name": first_name},
        "from": tg_user(user_id, first_name, language_code),
        "text": text,
    }
    if text.startswith("/"):
        msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"message": msg}


def tg_callback(
    data: str,
    user_id: int = 4242,
    chat_id: int | None = None,
    message_id: int = 1000,
    keyboard: list[list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """An update with a button press on an inline keyboard (``keyboard``: the message's
    ``inline_keyboard``, which Telegram sends along with the press)."""
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": {"id": chat_id or user_id, "type": "private"},
        "text": "…",
    }
    if keyboard is not None:
        message["reply_markup"] = {"inline_keyboard": keyboard}
    return {
        "callback_query": {
            "id": str(next(_ids)),
            "from": tg_user(user_id),
            "chat_instance": "ci",
            "data": data,
            "message": message,
        }
    }


def slack_dm(
    text: str, user: str = "U1", channel: str = "D1", msg_id: str | None = None
) -> dict[str, Any]:
    """A direct message event (``message.im``)."""
    return {
        "type": "message",
        "channel_type": "im",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": f"{time.time():.6f}",
        "client_msg_id": msg_id or f"m-{next(_ids)}",
    }


def slack_block_action(
    value: str, user: str = "U1", channel: str = "D1", text: str = "Yes"
) -> dict[str, Any]:
    """An interactivity payload for a press on one of our buttons."""
    return {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": channel},
        "trigger_id": f"t-{next(_ids)}",
        "team": {"id": "T1"},
        "actions": [
            {
                "type": "button",
                "action_id": "concierge:0",
                "value": value,
                "text": {"type": "plain_text", "text": text},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
