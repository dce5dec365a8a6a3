"""Web visitor identity: a signed visitor token, and the shop's HMAC identification.

A shop that knows the visitor (logged in) renders ``user_id`` and
``user_hash = hex(HMAC-SHA256(key=CONCIERGE_WEB_IDENTITY_SECRET, msg=user_id))`` into the
widget's script tag, as Intercom and Chatwoot do; nobody else can claim that user id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeSerializer


class VisitorTokens:
    def __init__(self, secret_key: str) -> None:
        self._s = URLSafeSerializer(secret_key, salt="concierge.visitor")

    def issue(self, visitor_id: str | None = None) -> tuple[str, str]:
        vid = visitor_id or "v_" + secrets.token_urlsafe(12)
        return vid, self._s.dumps({"v": vid})

    def verify(self, token: str | None) -> str | None:
        if not token:
            return None
        try:
            data = self._s.loads(token)
        except BadSignature:
            return None
        vid = data.get("v") if isinstance(data, dict) else None
        return vid if isinstance(vid, str) and vid else None


def user_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user_hash(secret: str | None, user_id: str, given: str) -> bool:
    if not secret or not user_id or not given:
        return False
    return hmac.compare_digest(user_hash(secret, user_id), given.lower())
