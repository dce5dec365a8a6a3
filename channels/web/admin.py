"""The staff web inbox at ``/admin/inbox``: open handoffs, transcript, reply, resolve, hand back.

Login with ``CONCIERGE_ADMIN_PASSWORD``; the session is a signed, HttpOnly, SameSite=Strict
cookie; every form carries a CSRF token; Jinja2 escapes everything it renders. The page polls
``/admin/inbox/<id>/messages.json`` so new customer messages show up without a reload.
"""

from __future__ import annotations

import hmac
import secrets
import time
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.handoff.models import ACTIVE, Handoff
from bot.runtime import Runtime
from bot.storage.models import Contact, Message

COOKIE = "concierge_admin"
SESSION_SECONDS = 12 * 3600
TEMPLATES = Path(__file__).parent / "templates"


class Admin:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.password = runtime.settings.admin_password
        self.signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.admin")
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"])
        )
        self._failures: dict[str, list[float]] = {}

    # --- sessions ----------------------------------------------------------------------
    def session(self, request: Request) -> dict[str, Any] | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self.signer.loads(raw, max_age=SESSION_SECONDS)
        except (BadSignature, SignatureExpired):
            return None
        return data if isinstance(data, dict) else None

    def render(self, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**ctx), status_code=status)

    def _throttled(self, ip: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._failures.get(ip, []) if now - t < 300]
        self._failures[ip] = recent
        return len(recent) >= 5

    async def login(self, request: Request) -> Response:
        if not self.password:
            return self.render(
                "admin_login.html",
                503,
                error="The admin pages are off: set CONCIERGE_ADMIN_PASSWORD.",
            )
        if request.method == "GET":
            return self.render("admin_login.html", error=None)
        ip = request.client.host if request.client else "?"
        if self._throttled(ip):
            return self.render("admin_login.html", 429, error="Too many attempts; wait 5 minutes.")
        form = await request.form()
        name = str(form.get("name") or "").strip()[:64] or "staff"
        given = str(form.get("password") or "")
        if not hmac.compare_digest(given.encode(), self.password.encode()):
            self._failures.setdefault(ip, []).append(time.monotonic())
            return self.render("admin_login.html", 401, error="Wrong password.")
        token = self.signer.dumps({"name": name, "csrf": secrets.token_urlsafe(16)})
        resp = RedirectResponse("/admin/inbox", status_code=303)
        resp.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/admin",
        )
        return resp

    async def logout(self, request: Request) -> Response:
        resp = RedirectResponse("/admin/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/admin")
        return resp

    def _guard(self, request: Request) -> dict[str, Any] | Response:
        sess = self.session(request)
        if sess is None:
            if request.url.path.endswith(".json") or request.method == "POST":
                return JSONResponse({"error": "login required"}, status_code=401)
            return RedirectResponse("/admin/login", status_code=303)
        return sess

    # --- pages ---------------------------------------------------------------------------
    async def inbox(self, request: Request) -> Response:
        sess = self._guard(request)
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
        return self.render("admin_inbox.html", staff=sess["name"], items=rows, current=None)

    async def handoff(self, request: Request) -> Response:
        sess = self._guard(request)
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
        sess = self._guard(request)
        if isinstance(sess, Response):
            return sess
        hid = _handoff_id(request)
        async with self.runtime.db.session() as s:
            h = await s.get(Handoff, hid) if hid else None
            if h is None:
                return JSONResponse({"error": "no such handoff"}, status_code=404)
            return JSONResponse({"status": h.status, "messages": await self._messages(s, h)})

    async def act(self, request: Request) -> Response:
        sess = self._guard(request)
        if isinstance(sess, Response):
            return sess
        hid = _handoff_id(request)
        if hid is None:
            return JSONResponse({"error": "no such handoff"}, status_code=404)
        form = await request.form()
        if not hmac.compare_digest(str(form.get("csrf") or ""), sess["csrf"]):
            return JSONResponse({"error": "bad CSRF token"}, status_code=403)
        action = request.path_params["action"]
        svc = getattr(self.runtime, "handoff", None)
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
        Route("/admin/logout", admin.logout, methods=["POST", "GET"]),
        Route("/admin/inbox", admin.inbox),
        Route("/admin/inbox/{hid:int}", admin.handoff),
        Route("/admin/inbox/{hid:int}/messages.json", admin.messages_json),
        Route("/admin/inbox/{hid:int}/{action:str}", admin.act, methods=["POST"]),
    ]
