"""The staff web inbox at ``/admin/inbox``: open handoffs, transcript, reply, resolve, hand back.

Login with ``CONCIERGE_ADMIN_PASSWORD`` (throttled per account and browser or address:
:class:`LoginThrottle`); the session is a signed, HttpOnly, SameSite=Strict cookie whose id is
revoked server-side at logout (POST only); every form, the login form too, carries a CSRF
token; Jinja2 escapes everything it renders. The page polls
``/admin/inbox/<id>/messages.json`` so new customer messages show up without a reload.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.handoff.models import ACTIVE, Handoff
from bot.handoff.service import HandoffService
from bot.runtime import Runtime
from bot.storage.models import Contact, Message
from bot.storage.seen import SeenDelivery, record

COOKIE = "concierge_admin"
LOGIN_COOKIE = "concierge_login"  # the login form's CSRF nonce
DEVICE_COOKIE = "concierge_device"  # a browser that logged in before (see LoginThrottle)
SESSION_SECONDS = 12 * 3600
DEVICE_SECONDS = 365 * 86400
LOGIN_FORM_SECONDS = 3600
REVOKED = "admin_session"  # seen_deliveries channel: the ids of sessions logged out
TEMPLATES = Path(__file__).parent / "templates"


class LoginThrottle:
    """Failed logins counted per (account, where from), checked with the password's answer.

    The account is the name typed in the form. "Where from" is the browser when it carries a
    device cookie (given at a successful login, signed: it cannot be made up), else the IP
    address. A key with ``limit`` failures in ``window`` seconds is locked until the oldest
    of them is ``window`` old: every try of that key gets 429 then, the right password too
    (otherwise the lock would not slow guessing). Failures of one key never lock another, so
    an attacker behind the staff's proxy, trying names and passwords, cannot lock out staff
    whose browsers logged in before (their device key is theirs alone), nor staff who use
    another name. Over all names, an IP address without a device cookie gets ``ip_limit``
    failures a window (so trying many names is no way around the account limit); a new
    browser behind an attacked proxy can be locked for that window, a known one never.
    In memory, per process.
    """

    def __init__(
        self,
        limit: int = 5,
        ip_limit: int = 30,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.ip_limit, self.window, self.clock = limit, ip_limit, window, clock
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str) -> list[float]:
        now = self.clock()
        recent = [t for t in self._failures.get(key, []) if now - t < self.window]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def locked(self, keys: list[tuple[str, int]]) -> float:
        """Seconds until every one of ``keys`` (key, its limit) is open again; 0 if open."""
        wait = 0.0
        for key, limit in keys:
            recent = self._recent(key)
            if len(recent) >= limit:
                wait = max(wait, self.window - (self.clock() - recent[-limit]))
        return wait

    def fail(self, keys: list[tuple[str, int]]) -> None:
        if len(self._failures) > 100_000:  # a flood of made-up names: forget the old ones
            for key in list(self._failures):
                self._recent(key)
        for key, _ in keys:
            self._failures.setdefault(key, []).append(self.clock())

    def succeed(self, keys: list[tuple[str, int]]) -> None:
        self._failures.pop(keys[0][0], None)  # the account key; an IP's count stays


class Admin:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.password = runtime.settings.admin_password
        self.signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.admin")
        self.login_signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.login")
        self.device_signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.device")
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"])
        )
        self.throttle = LoginThrottle()

    # --- sessions ----------------------------------------------------------------------
    async def session(self, request: Request) -> dict[str, Any] | None:
        """The signed session cookie's content, unless it expired or was logged out (the
        session id is then in the database, for every process, across restarts)."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self.signer.loads(raw, max_age=SESSION_SECONDS)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            return None
        async with self.runtime.db.session() as s:
            revoked = await s.get(SeenDelivery, (REVOKED, data["sid"]))
        return None if revoked is not None else data

    def render(self, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**ctx), status_code=status)

    def login_form(self, status: int = 200, error: str | None = None) -> HTMLResponse:
        """The login page with a fresh CSRF token: a nonce in a cookie of its own and, signed,
        in the form; a POST must bring both (a page elsewhere can send neither)."""
        nonce = secrets.token_urlsafe(16)
        resp = self.render(
            "admin_login.html", status, error=error, csrf=self.login_signer.dumps(nonce)
        )
        resp.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=LOGIN_FORM_SECONDS,
            httponly=True,
            samesite="strict",
            path="/admin/login",
        )
        return resp

    def _login_csrf_ok(self, request: Request, given: str) -> bool:
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not nonce or not given:
            return False
        try:
            signed = self.login_signer.loads(given, max_age=LOGIN_FORM_SECONDS)
        except (BadSignature, SignatureExpired):
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed, nonce)

    def _throttle_keys(self, request: Request, name: str) -> list[tuple[str, int]]:
        account = name.casefold()
        device = self._device(request, account)
        if device is not None:
            return [(f"{account}\x00device:{device}", self.throttle.limit)]
        ip = request.client.host if request.client else "?"
        return [
            (f"{account}\x00ip:{ip}", self.throttle.limit),
            (f"\x00ip:{ip}", self.throttle.ip_limit),
        ]

    def _device(self, request: Request, account: str) -> str | None:
        raw = request.cookies.get(DEVICE_COOKIE)
        if not raw:
            return None
        try:
            data = self.device_signer.loads(raw, max_age=DEVICE_SECONDS)
        except (BadSignature, SignatureExpired):
            return None
        if isinstance(data, dict) and data.get("a") == account and isinstance(data.get("d"), str):
            return str(data["d"])
        return None

    async def login(self, request: Request) -> Response:
        if not self.password:
            return self.render(
                "admin_login.html",
                503,
                error="The admin pages are off: set CONCIERGE_ADMIN_PASSWORD.",
            )
        if request.method == "GET":
            return self.login_form()
        form = await request.form()
        if not self._login_csrf_ok(request, str(form.get("csrf") or "")):
            return self.login_form(403, "The login form expired or came from elsewhere; try again.")
        name = str(form.get("name") or "").strip()[:64] or "staff"
        given = str(form.get("password") or "")
        right = hmac.compare_digest(given.encode(), self.password.encode())
        keys = self._throttle_keys(request, name)
        wait = self.throttle.locked(keys)
        if wait > 0:
            minutes = max(1, round(wait / 60))
            return self.login_form(429, f"Too many failed attempts; wait {minutes} minute(s).")
        if not right:
            self.throttle.fail(keys)
            return self.login_form(401, "Wrong password.")
        self.throttle.succeed(keys)
        token = self.signer.dumps(
            {"name": name, "csrf": secrets.token_urlsafe(16), "sid": secrets.token_urlsafe(16)}
        )
        resp = RedirectResponse("/admin/inbox", status_code=303)
        secure = request.url.scheme == "https"
        resp.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/admin",
        )
        device = self._device(request, name.casefold()) or secrets.token_urlsafe(12)
        resp.set_cookie(
            DEVICE_COOKIE,
            self.device_signer.dumps({"a": name.casefold(), "d": device}),
            max_age=DEVICE_SECONDS,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/admin/login",
        )
        resp.delete_cookie(LOGIN_COOKIE, path="/admin/login")
        return resp

    async def logout(self, request: Request) -> Response:
        """POST only, with the session's CSRF token: the session id is recorded as ended, so
        the cookie opens nothing any more, wherever it was copied to."""
        sess = await self.session(request)
        if sess is not None:
            form = await request.form()
            if not hmac.compare_digest(str(form.get("csrf") or ""), str(sess.get("csrf"))):
                return JSONResponse({"error": "bad CSRF token"}, status_code=403)
            async with self.runtime.db.session() as s:
                await record(s, REVOKED, sess["sid"], self.runtime.clock.now())
        resp = RedirectResponse("/admin/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/admin")
        return resp

    async def _guard(self, request: Request) -> dict[str, Any] | Response:
        sess = await self.session(request)
        if sess is None:
            if request.url.path.endswith(".json") or request.method == "POST":
                return JSONResponse({"error": "login required"}, status_code=401)
            return RedirectResponse("/admin/login", status_code=303)
        return sess

    # --- pages ---------------------------------------------------------------------------
    async def inbox(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        async with self.runtime.db.session() as s:
            rows = (
                await s.execute(
                    select(Handoff, Contact)
                    .join(Contact, Contact.id == Handoff.contact_id)
                    .where(Handoff.status.in_(ACTIVE))
                    .order_by(Handoff.created_at)
                )
            ).all()
        return self.render(
            "admin_inbox.html", staff=sess["name"], items=rows, current=None, csrf=sess["csrf"]
        )

    async def handoff(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        hid = _handoff_id(request)
        async with self.runtime.db.session() as s:
            h = await s.get(Handoff, hid) if hid else None
            if h is None:
                return self.render(
                    "admin_inbox.html",
                    404,
                    staff=sess["name"],
                    items=[],
                    current=None,
                    error="No such handoff.",
                    csrf=sess["csrf"],
                )
            contact = await s.get(Contact, h.contact_id)
            messages = await self._messages(s, h)
            rows = (
                await s.execute(
                    select(Handoff, Contact)
                    .join(Contact, Contact.id == Handoff.contact_id)
                    .where(Handoff.status.in_(ACTIVE))
                    .order_by(Handoff.created_at)
                )
            ).all()
        return self.render(
            "admin_inbox.html",
            staff=sess["name"],
            items=rows,
            current=h,
            contact=contact,
            messages=messages,
            csrf=sess["csrf"],
        )

    async def _messages(self, s: Any, h: Handoff) -> list[dict[str, Any]]:
        rows = (
            await s.execute(
                select(Message)
                .where(Message.conversation_id == h.conversation_id)
                .order_by(Message.id.desc())
                .limit(200)
            )
        ).scalars()
        return [
            {
                "id": m.id,
                "who": "customer" if m.direction == "in" else m.sender,
                "text": m.text,
                "internal": bool((m.meta or {}).get("internal")),
                "staff": (m.meta or {}).get("staff_name"),
                "ts": m.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for m in reversed(list(rows))
        ]

    async def messages_json(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        hid = _handoff_id(request)
        async with self.runtime.db.session() as s:
            h = await s.get(Handoff, hid) if hid else None
            if h is None:
                return JSONResponse({"error": "no such handoff"}, status_code=404)
            return JSONResponse({"status": h.status, "messages": await self._messages(s, h)})

    async def act(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        hid = _handoff_id(request)
        if hid is None:
            return JSONResponse({"error": "no such handoff"}, status_code=404)
        form = await request.form()
        if not hmac.compare_digest(str(form.get("csrf") or ""), sess["csrf"]):
            return JSONResponse({"error": "bad CSRF token"}, status_code=403)
        action = request.path_params["action"]
        svc = self.runtime.maybe_service(HandoffService)
        if svc is None:
            return JSONResponse({"error": "handoff feature is off"}, status_code=503)
        if action == "reply":
            text = str(form.get("text") or "").strip()
            if not text:
                return JSONResponse({"error": "empty reply"}, status_code=400)
            if len(text) > 20_000:
                return JSONResponse(
                    {"error": "reply longer than 20000 characters"}, status_code=413
                )
            await svc.staff_reply(handoff_id=hid, staff=sess["name"], text=text, source="inbox")
        elif action in ("take", "resolve", "handback"):
            await svc.staff_action(hid, action, sess["name"])
        else:
            return JSONResponse({"error": f"unknown action {action!r}"}, status_code=400)
        return RedirectResponse(f"/admin/inbox/{hid}", status_code=303)


MAX_ID = 2**63 - 1  # the largest key a BIGINT (or SQLite's INTEGER) holds


def _handoff_id(request: Request) -> int | None:
    """The path's handoff number, or ``None`` when no row can have it (0, or beyond BIGINT)."""
    hid = int(request.path_params["hid"])
    return hid if 0 < hid <= MAX_ID else None


def routes(runtime: Runtime) -> list[BaseRoute]:
    admin = Admin(runtime)
    return [
        Route("/admin", lambda r: RedirectResponse("/admin/inbox", status_code=303)),
        Route("/admin/login", admin.login, methods=["GET", "POST"]),
        Route("/admin/logout", admin.logout, methods=["POST"]),
        Route("/admin/inbox", admin.inbox),
        Route("/admin/inbox/{hid:int}", admin.handoff),
        Route("/admin/inbox/{hid:int}/messages.json", admin.messages_json),
        Route("/admin/inbox/{hid:int}/{action:str}", admin.act, methods=["POST"]),
    ]
