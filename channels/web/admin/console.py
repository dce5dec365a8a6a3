"""The staff console's base: the session cookie, the one guard every page's handler goes
through (:func:`signed_in` / :func:`owner_only`), and the rendering of its pages."""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from bot.runtime import Runtime
from bot.shop import support_hours
from bot.staff import OWNER, StaffAccount, log_action
from bot.storage.seen import SeenDelivery
from channels.web import page_templates
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
MAX_ID = 2**63 - 1  # the largest key a BIGINT (or SQLite's INTEGER) holds

Session = dict[str, Any]  # name, role (owner/agent), staff_id, csrf, sid


def path_id(request: Request, name: str) -> int | None:
    """The path's number, or ``None`` when no row can have it (0, or beyond BIGINT)."""
    n = int(request.path_params[name])
    return n if 0 < n <= MAX_ID else None


def unsign(signer: URLSafeTimedSerializer, raw: str | None, max_age: int) -> Any:
    """What ``signer`` signed in ``raw``, or ``None`` (missing, forged or older than
    ``max_age`` seconds)."""
    if not raw:
        return None
    try:
        return signer.loads(raw, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None


def not_found(what: str) -> JSONResponse:
    """The 404 of a JSON or POST endpoint: no ``what`` has the path's number."""
    return JSONResponse({"error": f"no such {what}"}, status_code=404)


M = TypeVar("M")


class Answer(Exception):
    """Raised in a guarded handler: the response to give instead (see :func:`found`)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def found(s: AsyncSession, model: type[M], request: Request, name: str, what: str) -> M:
    """The ``model`` row of the path's number ``name``; without one the handler answers 404
    ``no such <what>`` (:class:`Answer`)."""
    key = path_id(request, name)
    row = await s.get(model, key) if key else None
    if row is None:
        raise Answer(not_found(what))
    return row


def csrf_ok(form: FormData, sess: Session) -> bool:
    """The form carries the session's CSRF token."""
    return hmac.compare_digest(str(form.get("csrf") or ""), str(sess.get("csrf")))


class Console:
    """What every console page shares: the runtime, the signers, the templates, the session."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.password = runtime.settings.admin_password
        self.signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.admin")
        self.login_signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.login")
        self.device_signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.device")
        self.invite_signer = URLSafeTimedSerializer(runtime.secret_key, salt="concierge.invite")
        self.env = page_templates()
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
    async def session(self, request: Request) -> Session | None:
        """The session: the signed cookie's content, unless it expired or was logged out (the
        id is then in the database, for every process, across restarts) or its account is
        disabled or gone; name and role are the account's current ones."""
        data = unsign(self.signer, request.cookies.get(COOKIE), SESSION_SECONDS)
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

    async def _guard(self, request: Request) -> Session | Response:
        """The session (keys ``name``, ``role`` owner/agent, ``staff_id``, ``csrf``, ``sid``),
        or the answer to give: a redirect to the login page, 401 for JSON and POSTs, 403 for
        a POST without the session's CSRF token (checked here for every POST)."""
        sess = await self.session(request)
        if sess is None:
            if request.url.path.endswith(".json") or request.method == "POST":
                return JSONResponse({"error": "login required"}, status_code=401)
            return RedirectResponse("/admin/login", status_code=303)
        if request.method == "POST" and not csrf_ok(await request.form(), sess):
            return JSONResponse({"error": "bad CSRF token"}, status_code=403)
        return sess

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

    async def log(self, s: AsyncSession, sess: Session, action: str, **about: Any) -> None:
        """The staff action in the audit log, by the session's account, now."""
        await log_action(
            s,
            staff_id=sess["staff_id"],
            staff_name=sess["name"],
            action=action,
            now=self.runtime.clock.now(),
            **about,
        )

    # --- pages -----------------------------------------------------------------------------
    def render(self, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("tz_name", str(self.tz))
        return HTMLResponse(self.env.get_template(name).render(**ctx), status_code=status)

    def page(self, name: str, sess: Session, status: int = 200, **ctx: Any) -> HTMLResponse:
        return self.render(
            name, status, staff=sess["name"], role=sess["role"], csrf=sess["csrf"], **ctx
        )


C = TypeVar("C", bound=Console)
Handler = Callable[[C, Request, Session], Awaitable[Response]]
Endpoint = Callable[[C, Request], Awaitable[Response]]


def _guarded(role: str | None) -> Callable[[Handler[C]], Endpoint[C]]:
    def wrap(handler: Handler[C]) -> Endpoint[C]:
        @functools.wraps(handler)
        async def endpoint(self: C, request: Request) -> Response:
            sess = await self._guard(request)
            if isinstance(sess, Response):
                return sess
            if role is not None and sess["role"] != role:
                return JSONResponse({"error": "only the owner may do this"}, status_code=403)
            try:
                return await handler(self, request, sess)
            except Answer as a:
                return a.response

        return endpoint

    return wrap


signed_in = _guarded(None)
"""A handler ``(self, request, session)`` of a signed-in staff member: the route's endpoint
``(self, request)`` answers for it without a session (login page, 401) or, for a POST, without
the session's CSRF token (403), and gives the response of an :class:`Answer` it raises."""

owner_only = _guarded(OWNER)
"""As :data:`signed_in`, and 403 for any role but the owner's."""
