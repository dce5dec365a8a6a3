"""The staff console under ``/admin``: first-start setup, login, staff accounts and invites,
the live inbox, every conversation, the contact panel with export and erase.

Security: staff log in with their own account (argon2id hashes, ``bot.staff``) or, as a
fallback for deployments without accounts, the shared ``CONCIERGE_ADMIN_PASSWORD``; failed
logins are throttled per account and browser or address (:class:`LoginThrottle`); the session
is a signed, HttpOnly, SameSite=Strict cookie whose id is revoked server-side at logout (POST
only) and whose account is checked on every request (a disabled account is out at once);
every form (login, setup and invite too) carries a CSRF token; Jinja2 escapes everything it
renders. Export and erase are for the owner role only (403 for an agent).

The inbox list polls ``/admin/inbox.json`` and an open handoff polls its
``messages.json``: new handoffs and messages show up without a reload.
"""

from __future__ import annotations

import hmac
import json
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from bot import conversations as convs
from bot import inbox
from bot.handoff.models import Handoff
from bot.handoff.service import HandoffService
from bot.privacy import erase_contact, export_contact
from bot.runtime import Runtime
from bot.shop import support_hours
from bot.staff import (
    AGENT,
    OWNER,
    ROLES,
    StaffAccount,
    StaffError,
    authenticate,
    check_setup_token,
    count_staff,
    create_account,
    list_accounts,
    log_action,
    refresh_staff_count,
)
from bot.storage.models import Contact, Conversation, Message
from bot.storage.seen import SeenDelivery, record
from channels.web.admin.throttle import LoginThrottle

COOKIE = "concierge_admin"
LOGIN_COOKIE = "concierge_login"  # the login/setup/invite form's CSRF nonce
DEVICE_COOKIE = "concierge_device"  # a browser that logged in before (see LoginThrottle)
SESSION_SECONDS = 12 * 3600
DEVICE_SECONDS = 365 * 86400
LOGIN_FORM_SECONDS = 3600
INVITE_SECONDS = 7 * 86400
REVOKED = "admin_session"  # seen_deliveries channel: the ids of sessions logged out
USED_SETUP = "staff_setup"  # ... of setup and invite links used
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
MAX_ID = 2**63 - 1  # the largest key a BIGINT (or SQLite's INTEGER) holds
MAX_REPLY = 20_000


def _id(request: Request, name: str) -> int | None:
    """The path's number, or ``None`` when no row can have it (0, or beyond BIGINT)."""
    n = int(request.path_params[name])
    return n if 0 < n <= MAX_ID else None


class AdminPages:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.password = runtime.settings.admin_password
        self.signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.admin")
        self.login_signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.login")
        self.device_signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.device")
        self.invite_signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.invite")
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"])
        )
        self.throttle = LoginThrottle()
        self.tz: ZoneInfo = support_hours(runtime.shop, runtime.settings).timezone
        self.env.filters["local"] = self.local
        self.sla = runtime.settings.handoff_sla_minutes * 60

    def local(self, dt: datetime | None) -> str:
        """A time in the shop's time zone, with the zone's abbreviation."""
        if dt is None:
            return ""
        return dt.astimezone(self.tz).strftime("%Y-%m-%d %H:%M %Z")

    # --- sessions ----------------------------------------------------------------------
    async def session(self, request: Request) -> dict[str, Any] | None:
        """The session: the signed cookie's content, unless it expired or was logged out (the
        id is then in the database, for every process, across restarts) or its account is
        disabled or gone; name and role are the account's current ones."""
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
            if await s.get(SeenDelivery, (REVOKED, data["sid"])) is not None:
                return None
            staff_id = data.get("staff_id")
            if staff_id is not None:
                acc = await s.get(StaffAccount, int(staff_id))
                if acc is None or acc.disabled:
                    return None
                data["name"], data["role"] = acc.name, acc.role
        data.setdefault("role", OWNER)
        data.setdefault("staff_id", None)
        return data

    async def _guard(self, request: Request) -> dict[str, Any] | Response:
        """The session (keys ``name``, ``role`` owner/agent, ``staff_id``, ``csrf``, ``sid``),
        or the answer to give: a redirect to the login page, 401 for JSON and POSTs, 403 for
        a POST without the session's CSRF token (checked here for every POST)."""
        sess = await self.session(request)
        if sess is None:
            if request.url.path.endswith(".json") or request.method == "POST":
                return JSONResponse({"error": "login required"}, status_code=401)
            return RedirectResponse("/admin/login", status_code=303)
        if request.method == "POST":
            form = await request.form()
            if not hmac.compare_digest(str(form.get("csrf") or ""), str(sess.get("csrf"))):
                return JSONResponse({"error": "bad CSRF token"}, status_code=403)
        return sess

    async def _owner(self, request: Request) -> dict[str, Any] | Response:
        sess = await self._guard(request)
        if not isinstance(sess, Response) and sess["role"] != OWNER:
            return JSONResponse({"error": "only the owner may do this"}, status_code=403)
        return sess

    def render(self, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("tz_name", str(self.tz))
        return HTMLResponse(self.env.get_template(name).render(**ctx), status_code=status)

    def page(self, name: str, sess: dict[str, Any], status: int = 200, **ctx: Any) -> HTMLResponse:
        return self.render(
            name, status, staff=sess["name"], role=sess["role"], csrf=sess["csrf"], **ctx
        )

    def _set_session(
        self, request: Request, resp: Response, *, name: str, staff_id: int | None, role: str
    ) -> None:
        token = self.signer.dumps(
            {
                "name": name,
                "staff_id": staff_id,
                "role": role,
                "csrf": secrets.token_urlsafe(16),
                "sid": secrets.token_urlsafe(16),
            }
        )
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

    # --- forms outside a session: login, setup, invite -----------------------------------
    def nonce_form(self, template: str, path: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        """A form page with a fresh CSRF token: a nonce in a cookie of its own and, signed,
        in the form; a POST must bring both (a page elsewhere can send neither)."""
        nonce = secrets.token_urlsafe(16)
        resp = self.render(template, status, csrf=self.login_signer.dumps(nonce), **ctx)
        resp.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=LOGIN_FORM_SECONDS,
            httponly=True,
            samesite="strict",
            path=path,
        )
        return resp

    def login_form(self, status: int = 200, error: str | None = None) -> HTMLResponse:
        return self.nonce_form("admin_login.html", "/admin/login", status, error=error)

    def _nonce_ok(self, request: Request, given: str) -> bool:
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
        async with self.runtime.db.session() as s:
            accounts = await count_staff(s)
        if not accounts and not self.password:
            return self.render(
                "admin_login.html",
                503,
                error=(
                    "No staff account yet: open the one-time setup link that `concierge run` "
                    "printed, or create one with `concierge staff add` "
                    "(or set CONCIERGE_ADMIN_PASSWORD)."
                ),
            )
        if request.method == "GET":
            return self.login_form()
        form = await request.form()
        if not self._nonce_ok(request, str(form.get("csrf") or "")):
            return self.login_form(403, "The login form expired or came from elsewhere; try again.")
        name = str(form.get("name") or "").strip()[:320] or "staff"
        given = str(form.get("password") or "")
        keys = self._throttle_keys(request, name)
        wait = self.throttle.locked(keys)
        if wait > 0:
            minutes = max(1, round(wait / 60))
            return self.login_form(429, f"Too many failed attempts; wait {minutes} minute(s).")
        acc = None
        if accounts:
            async with self.runtime.db.session() as s:
                acc = await authenticate(s, name, given)
        if acc is not None:
            who, staff_id, role = acc.name, acc.id, acc.role
        elif self.password and hmac.compare_digest(given.encode(), self.password.encode()):
            # the shared password: the owner while nobody has an account, an agent after
            who, staff_id, role = name[:64], None, AGENT if accounts else OWNER
        else:
            self.throttle.fail(keys)
            return self.login_form(401, "Wrong password.")
        self.throttle.succeed(keys)
        resp = RedirectResponse("/admin/inbox", status_code=303)
        self._set_session(request, resp, name=who, staff_id=staff_id, role=role)
        device = self._device(request, name.casefold()) or secrets.token_urlsafe(12)
        resp.set_cookie(
            DEVICE_COOKIE,
            self.device_signer.dumps({"a": name.casefold(), "d": device}),
            max_age=DEVICE_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
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

    async def _new_account_page(self, request: Request, kind: str) -> Response:
        """``/admin/setup`` (the first owner, from the link ``concierge run`` prints) and
        ``/admin/invite`` (an account the owner invited): a one-time, expiring link."""
        token = str(request.query_params.get("token") or "")
        path = f"/admin/{kind}"
        invite: dict[str, Any] | None = None
        nonce: str | None
        if kind == "setup":
            nonce = check_setup_token(self.runtime.secret_key, token)
        else:
            try:
                invite = self.invite_signer.loads(token, max_age=INVITE_SECONDS)
            except (BadSignature, SignatureExpired):
                invite = None
            nonce = str(invite["n"]) if isinstance(invite, dict) and "n" in invite else None
        if nonce is None:
            return self.render(
                "admin_account.html",
                400,
                kind=kind,
                fatal="This link is wrong or expired. "
                + (
                    "Restart `concierge run` for a new one."
                    if kind == "setup"
                    else "Ask the owner for a new invitation."
                ),
            )
        async with self.runtime.db.session() as s:
            used = await s.get(SeenDelivery, (USED_SETUP, nonce)) is not None
            if kind == "setup" and not used:
                used = await count_staff(s) > 0
        if used:
            return self.render(
                "admin_account.html", 410, kind=kind, fatal="This link was used already: log in."
            )
        fixed = invite or {}
        if request.method == "GET":
            return self.nonce_form("admin_account.html", path, kind=kind, token=token, invite=fixed)
        form = await request.form()
        if not self._nonce_ok(request, str(form.get("csrf") or "")):
            return self.nonce_form(
                "admin_account.html",
                path,
                403,
                kind=kind,
                token=token,
                invite=fixed,
                error="The form expired or came from elsewhere; try again.",
            )
        name = str(fixed.get("name") or form.get("name") or "")
        email = str(fixed.get("email") or form.get("email") or "")
        role = str(fixed.get("role") or OWNER)
        password = str(form.get("password") or "")
        now = self.runtime.clock.now()
        error = None
        if password != str(form.get("password2") or ""):
            error = "The two passwords differ."
        else:
            try:
                async with self.runtime.db.session() as s:
                    if not await record(s, USED_SETUP, nonce, now) or (
                        kind == "setup" and await count_staff(s) > 0
                    ):
                        raise StaffError("this link was used already")
                    acc = await create_account(
                        s, name=name, email=email, password=password, role=role, now=now
                    )
                    await log_action(
                        s,
                        staff_id=acc.id,
                        staff_name=acc.name,
                        action=kind,
                        now=now,
                        detail={"role": role},
                    )
                    who, staff_id = acc.name, acc.id
            except StaffError as e:
                error = f"Cannot create the account: {e}."
        if error is not None:
            return self.nonce_form(
                "admin_account.html",
                path,
                400,
                kind=kind,
                token=token,
                invite=fixed,
                error=error,
                name=name,
                email=email,
            )
        await refresh_staff_count(self.runtime)
        resp = RedirectResponse("/admin/inbox", status_code=303)
        self._set_session(request, resp, name=who, staff_id=staff_id, role=role)
        resp.delete_cookie(LOGIN_COOKIE, path=path)
        return resp

    async def setup(self, request: Request) -> Response:
        return await self._new_account_page(request, "setup")

    async def accept_invite(self, request: Request) -> Response:
        return await self._new_account_page(request, "invite")

    # --- staff accounts (owner) ------------------------------------------------------------
    async def staff_page(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        async with self.runtime.db.session() as s:
            accounts = await list_accounts(s)
        return self.page("admin_staff.html", sess, active="staff", accounts=accounts)

    async def staff_invite(self, request: Request) -> Response:
        sess = await self._owner(request)
        if isinstance(sess, Response):
            return sess
        form = await request.form()
        name = str(form.get("name") or "").strip()
        email = str(form.get("email") or "").strip().lower()
        role = str(form.get("role") or AGENT)
        async with self.runtime.db.session() as s:
            accounts = await list_accounts(s)
            problem = None
            if role not in ROLES or not name or len(name) > 64 or "@" not in email:
                problem = "An invitation needs a name, an e-mail address and a role."
            elif any(a.name.lower() == name.lower() or a.email == email for a in accounts):
                problem = "An account with this name or e-mail address exists already."
            if problem is None:
                await log_action(
                    s,
                    staff_id=sess["staff_id"],
                    staff_name=sess["name"],
                    action="invite",
                    now=self.runtime.clock.now(),
                    detail={"role": role},
                )
        if problem is not None:
            return self.page(
                "admin_staff.html", sess, 400, active="staff", accounts=accounts, error=problem
            )
        token = self.invite_signer.dumps(
            {"n": secrets.token_urlsafe(16), "name": name, "email": email, "role": role}
        )
        link = f"{str(request.base_url).rstrip('/')}/admin/invite?token={token}"
        return self.page(
            "admin_staff.html",
            sess,
            active="staff",
            accounts=accounts,
            invite_link=link,
            invited=name,
        )

    async def staff_toggle(self, request: Request) -> Response:
        sess = await self._owner(request)
        if isinstance(sess, Response):
            return sess
        sid = _id(request, "sid")
        action = request.path_params["action"]
        if action not in ("disable", "enable"):
            return JSONResponse({"error": f"unknown action {action!r}"}, status_code=400)
        async with self.runtime.db.session() as s:
            acc = await s.get(StaffAccount, sid) if sid else None
            if acc is None:
                return JSONResponse({"error": "no such account"}, status_code=404)
            if acc.id == sess["staff_id"]:
                return JSONResponse({"error": "you cannot disable yourself"}, status_code=400)
            acc.disabled = action == "disable"
            await log_action(
                s,
                staff_id=sess["staff_id"],
                staff_name=sess["name"],
                action=f"staff_{action}",
                now=self.runtime.clock.now(),
                detail={"account": acc.id},
            )
        await refresh_staff_count(self.runtime)
        return RedirectResponse("/admin/staff", status_code=303)

    # --- inbox -----------------------------------------------------------------------------
    def _item_json(self, it: inbox.InboxItem, now: datetime) -> dict[str, Any]:
        h, c = it.handoff, it.contact
        waited = (now - it.waiting_since).total_seconds() if it.waiting_since else None
        state = "none"
        if waited is not None:
            state = "ok" if waited < self.sla / 2 else "warn" if waited < self.sla else "late"
        return {
            "id": h.id,
            "url": f"/admin/inbox/{h.id}",
            "name": it.name,
            "last_question": it.last_question[:200],
            "waiting_minutes": None if waited is None else int(waited // 60),
            "sla": state,
            "language": h.language or "?",
            "stage": c.lifecycle_stage,
            "channel": h.channel,
            "status": h.status,
            "assignee": h.assignee,
            "reason": h.reason,
            "created": self.local(h.created_at),
        }

    def _filters(self, request: Request) -> tuple[str, str]:
        filt = request.query_params.get("filter") or "open"
        return (filt if filt in inbox.FILTERS else "open"), (request.query_params.get("q") or "")

    async def _items(self, request: Request, sess: dict[str, Any]) -> list[dict[str, Any]]:
        filt, q = self._filters(request)
        async with self.runtime.db.session() as s:
            items = await inbox.inbox_items(s, filt=filt, me=sess["name"], q=q)
        now = self.runtime.clock.now()
        return [self._item_json(it, now) for it in items]

    async def inbox_json(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        return JSONResponse({"items": await self._items(request, sess)})

    async def inbox(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        filt, q = self._filters(request)
        return self.page(
            "admin_inbox.html",
            sess,
            active="inbox",
            items=await self._items(request, sess),
            filt=filt,
            q=q,
            filters=inbox.FILTERS,
            current=None,
        )

    async def handoff(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        hid = _id(request, "hid")
        filt, q = self._filters(request)
        async with self.runtime.db.session() as s:
            h = await s.get(Handoff, hid) if hid else None
            panel = await inbox.contact_panel(s, h.contact_id) if h else None
            messages = await self._messages(s, h) if h else []
            accounts = [a for a in await list_accounts(s) if not a.disabled]
        items = await self._items(request, sess)
        if h is None:
            return self.page(
                "admin_inbox.html",
                sess,
                404,
                active="inbox",
                items=items,
                filt=filt,
                q=q,
                filters=inbox.FILTERS,
                current=None,
                error="No such handoff.",
            )
        canned = inbox.canned_replies(self.runtime.settings.content_dir)
        lang = h.language or self.runtime.settings.default_language
        return self.page(
            "admin_inbox.html",
            sess,
            active="inbox",
            items=items,
            filt=filt,
            q=q,
            filters=inbox.FILTERS,
            current=h,
            panel=panel,
            messages=messages,
            canned=canned.get(lang) or canned.get(lang.split("-")[0]) or [],
            accounts=accounts,
            marker=self.runtime.settings.handoff_internal_marker,
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
                "ts": self.local(m.created_at),
            }
            for m in reversed(list(rows))
        ]

    async def messages_json(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        hid = _id(request, "hid")
        async with self.runtime.db.session() as s:
            h = await s.get(Handoff, hid) if hid else None
            if h is None:
                return JSONResponse({"error": "no such handoff"}, status_code=404)
            return JSONResponse({"status": h.status, "messages": await self._messages(s, h)})

    async def act(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        hid = _id(request, "hid")
        if hid is None:
            return JSONResponse({"error": "no such handoff"}, status_code=404)
        form: FormData = await request.form()
        action = request.path_params["action"]
        svc = self.runtime.maybe_service(HandoffService)
        if svc is None:
            return JSONResponse({"error": "handoff feature is off"}, status_code=503)
        marker = self.runtime.settings.handoff_internal_marker
        detail: dict[str, Any] = {}
        if action in ("reply", "note"):
            text = str(form.get("text") or "").strip()
            if not text:
                return JSONResponse({"error": "empty reply"}, status_code=400)
            if len(text) > MAX_REPLY:
                return JSONResponse(
                    {"error": f"reply longer than {MAX_REPLY} characters"}, status_code=413
                )
            if action == "note" and not text.startswith(marker):
                text = f"{marker} {text}"
            result = await svc.staff_reply(
                handoff_id=hid, staff=sess["name"], text=text, source="inbox"
            )
            if result == "internal":
                action = "note"
            detail["result"] = result
        elif action in ("take", "resolve", "handback"):
            detail["result"] = await svc.staff_action(hid, action, sess["name"])
        elif action == "assign":
            to = str(form.get("assignee") or "").strip() or None
            async with self.runtime.db.session() as s:
                names = {a.name for a in await list_accounts(s) if not a.disabled}
                if to is not None and to not in names and to != sess["name"]:
                    return JSONResponse({"error": f"no staff account {to!r}"}, status_code=400)
                if await inbox.assign(s, hid, to) is None:
                    return JSONResponse({"error": "no open handoff"}, status_code=404)
            detail["assignee"] = to
            svc._notify(hid)
        else:
            return JSONResponse({"error": f"unknown action {action!r}"}, status_code=400)
        async with self.runtime.db.session() as s:
            await log_action(
                s,
                staff_id=sess["staff_id"],
                staff_name=sess["name"],
                action=action,
                now=self.runtime.clock.now(),
                handoff_id=hid,
                detail=detail,
            )
        return RedirectResponse(f"/admin/inbox/{hid}", status_code=303)

    # --- conversations ---------------------------------------------------------------------
    def _conv_filter(self, request: Request) -> convs.ConversationFilter:
        p = request.query_params
        outcome = p.get("outcome") or ""
        return convs.ConversationFilter(
            q=(p.get("q") or "")[:200],
            channel=(p.get("channel") or "")[:32],
            language=(p.get("language") or "")[:16],
            outcome=outcome if outcome in convs.OUTCOMES else "",
            intent=(p.get("intent") or "")[:255],
            not_helpful=p.get("feedback") == "not_helpful",
        )

    async def conversations(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        f = self._conv_filter(request)
        try:
            page_no = max(1, min(int(request.query_params.get("page") or 1), 10_000))
        except ValueError:
            page_no = 1
        async with self.runtime.db.session() as s:
            rows = await convs.search(s, f, limit=50, offset=(page_no - 1) * 50)
            facets = await convs.facets(s)
        return self.page(
            "admin_conversations.html",
            sess,
            active="conversations",
            rows=rows,
            f=f,
            facets=facets,
            outcomes=convs.OUTCOMES,
            page_no=page_no,
        )

    async def conversation(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        cid = _id(request, "cid")
        async with self.runtime.db.session() as s:
            conv = await s.get(Conversation, cid) if cid else None
            if conv is None:
                return self.page(
                    "admin_conversation.html", sess, 404, active="conversations", conv=None
                )
            messages = await convs.transcript(s, conv.id)
            panel = await inbox.contact_panel(s, conv.contact_id)
        return self.page(
            "admin_conversation.html",
            sess,
            active="conversations",
            conv=conv,
            messages=messages,
            outcome_of=convs.outcome_of,
            panel=panel,
        )

    # --- contacts --------------------------------------------------------------------------
    async def contacts(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        q = (request.query_params.get("q") or "").strip()[:200]
        async with self.runtime.db.session() as s:
            rows = await inbox.find_contacts(s, q)
        return self.page("admin_contacts.html", sess, active="contacts", rows=rows, q=q)

    async def contact(self, request: Request) -> Response:
        sess = await self._guard(request)
        if isinstance(sess, Response):
            return sess
        cid = _id(request, "cid")
        async with self.runtime.db.session() as s:
            panel = await inbox.contact_panel(s, cid) if cid else None
            conversations = (
                list(
                    (
                        await s.execute(
                            select(Conversation)
                            .where(Conversation.contact_id == cid)
                            .order_by(Conversation.id.desc())
                            .limit(20)
                        )
                    ).scalars()
                )
                if panel
                else []
            )
        if panel is None:
            return self.page(
                "admin_contact.html", sess, 404, active="contacts", panel=None, erased=False
            )
        return self.page(
            "admin_contact.html",
            sess,
            active="contacts",
            panel=panel,
            conversations=conversations,
        )

    async def contact_export(self, request: Request) -> Response:
        sess = await self._owner(request)
        if isinstance(sess, Response):
            return sess
        cid = _id(request, "cid")
        async with self.runtime.db.session() as s:
            c = await s.get(Contact, cid) if cid else None
            if c is None:
                return JSONResponse({"error": "no such contact"}, status_code=404)
            doc = await export_contact(s, c)
            await log_action(
                s,
                staff_id=sess["staff_id"],
                staff_name=sess["name"],
                action="export",
                now=self.runtime.clock.now(),
                contact_id=c.id,
            )
        return Response(
            json.dumps(doc, ensure_ascii=False, indent=2, default=str),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="contact-{cid}.json"'},
        )

    async def contact_erase(self, request: Request) -> Response:
        sess = await self._owner(request)
        if isinstance(sess, Response):
            return sess
        cid = _id(request, "cid")
        async with self.runtime.db.session() as s:
            c = await s.get(Contact, cid) if cid else None
            if c is None:
                return JSONResponse({"error": "no such contact"}, status_code=404)
            await erase_contact(
                s, c, by=sess["name"], by_id=sess["staff_id"], now=self.runtime.clock.now()
            )
        return self.page(
            "admin_contact.html", sess, active="contacts", panel=None, erased=True, erased_id=cid
        )


# the class's name before the console grew
Admin = AdminPages
