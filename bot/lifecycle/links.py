"""Linking chat identities to the shop's customers (design §2).

- Web chat: the shop's HMAC identification (``channels/web/chat.py``).
- Telegram: a deep link ``https://t.me/<bot>?start=<token>``; the token is signed by the shop
  (or by ``concierge lifecycle link-token``) and carries its ``user_id``. The Telegram channel
  hands ``/start <token>`` over as ``Inbound.metadata["start_payload"]``.
- Slack (and any other channel): the same token sent as ``link <token>`` (or ``/start <token>``).

A token fits Telegram's 64 characters of ``[A-Za-z0-9_-]``::

    "L" + kind + expiry + signature + user
    kind       "g": user is a UUID (16 bytes), "u": user is UTF-8 text (at most 33 bytes)
    expiry     4 characters, base 36: the last valid day, counted from 2020-01-01 (UTC)
    signature  14 characters: base64url of the first 10 bytes of
               HMAC-SHA256(key=secret, msg="concierge.link:" + kind + expiry + user)
    user       base64url (no padding) of the user id's bytes
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from datetime import UTC, date, datetime

MAX_LENGTH = 64
_EPOCH = date(2020, 1, 1)
_TOKEN = re.compile(r"^L[gu][0-9a-z]{4}[A-Za-z0-9_-]{14}[A-Za-z0-9_-]+$")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b36(n: int, width: int = 4) -> str:
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = _B36[r] + out
    if n:
        raise ValueError("expiry too far ahead")
    return out


def _sign(secret: str, body: str) -> str:
    mac = hmac.new(secret.encode(), f"concierge.link:{body}".encode(), hashlib.sha256).digest()
    return _b64(mac[:10])


def make_start_token(
    secret: str, user_id: str, *, ttl_days: int = 30, now: datetime | None = None
) -> str:
    """A signed token for ``t.me/<bot>?start=<token>`` that links a chat to ``user_id``."""
    if not secret:
        raise ValueError("a secret is needed to sign link tokens")
    if not user_id:
        raise ValueError("user_id is empty")
    try:
        canonical = str(uuid.UUID(user_id)) == user_id  # round-trips: store 16 bytes
    except ValueError:
        canonical = False
    raw, kind = (uuid.UUID(user_id).bytes, "g") if canonical else (user_id.encode(), "u")
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    expiry = _b36((today - _EPOCH).days + ttl_days)
    payload = _b64(raw)
    body = f"{kind}{expiry}{payload}"
    token = f"L{kind}{expiry}{_sign(secret, body)}{payload}"
    if len(token) > MAX_LENGTH:
        raise ValueError(
            f"user id {user_id!r} is too long for a Telegram deep link (at most 33 bytes, "
            "or a UUID)"
        )
    return token


def verify_start_token(secret: str, token: str, *, now: datetime | None = None) -> str | None:
    """The user id in a valid, unexpired token; None otherwise."""
    if not secret or not token or len(token) > MAX_LENGTH or not _TOKEN.match(token):
        return None
    kind, expiry, sig, payload = token[1], token[2:6], token[6:20], token[20:]
    if not hmac.compare_digest(sig, _sign(secret, f"{kind}{expiry}{payload}")):
        return None
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    if (today - _EPOCH).days > int(expiry, 36):
        return None
    try:
        raw = _unb64(payload)
        return str(uuid.UUID(bytes=raw)) if kind == "g" else raw.decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def looks_like_token(text: str) -> bool:
    return bool(_TOKEN.match(text))


def deep_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username.lstrip('@')}?start={token}"
