"""Web visitor identity: a signed visitor token, and the shop's HMAC identification.

A shop that knows the visitor (logged in) renders ``user_id`` and
``user_hash = hex(HMAC-SHA256(key=CONCIERGE_WEB_IDENTITY_SECRET, msg=user_id))`` into the
widget's script tag, as Intercom and Chatwoot do; nobody else can claim that user id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer


class VisitorTokens:
    """Signed, dated visitor tokens: valid for ``max_age`` seconds after they were issued.
    Every session issues a fresh one (the widget keeps the newest), so a visitor who comes
    back within the time keeps their conversation, and a token found later (a log, a shared
    computer) opens nothing. ``clock`` gives the time in seconds (the runtime's clock)."""

    def __init__(
        self, secret_key: str, max_age: float, clock: Callable[[], float] = time.time
    ) -> None:
        signer = type("VisitorSigner", (TimestampSigner,), {"get_timestamp": _timestamp(clock)})
        self._s = URLSafeTimedSerializer(secret_key, salt="concierge.visitor", signer=signer)
        self.max_age = max_age

    def issue(self, visitor_id: str | None = None) -> tuple[str, str]:
        vid = visitor_id or "v_" + secrets.token_urlsafe(12)
        return vid, self._s.dumps({"v": vid})

    def verify(self, token: str | None) -> str | None:
        """The visitor id of a genuine token younger than ``max_age``, else ``None``."""
        if not token:
            return None
        try:
            data = self._s.loads(token, max_age=int(self.max_age))
        except BadSignature:  # forged, changed, expired (SignatureExpired), or the old format
            return None
        vid = data.get("v") if isinstance(data, dict) else None
        return vid if isinstance(vid, str) and vid else None


def _timestamp(clock: Callable[[], float]) -> Callable[[TimestampSigner], int]:
    def get_timestamp(_: TimestampSigner) -> int:
        return int(clock())

    return get_timestamp


def user_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user_hash(secret: str | None, user_id: str, given: str) -> bool:
    if not secret or not user_id or not given:
        return False
    return hmac.compare_digest(user_hash(secret, user_id), given.lower())
