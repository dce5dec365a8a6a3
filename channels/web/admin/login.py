"""The console's pages outside a session: login (throttled: :class:`LoginThrottle`) and
logout (POST only; the session id is revoked server-side)."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from bot.staff import AGENT, OWNER, authenticate, count_staff
from bot.storage.seen import record
from channels.web.admin.console import (
    COOKIE,
    DEVICE_COOKIE,
    DEVICE_SECONDS,
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    REVOKED,
    Console,
    csrf_ok,
    unsign,
)


class LoginPages(Console):
    """``/admin/login`` and ``/admin/logout``, and the CSRF nonce of every form outside a
    session (login, setup, invite)."""

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
        signed = unsign(self.login_signer, given, LOGIN_FORM_SECONDS)
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
        data = unsign(self.device_signer, request.cookies.get(DEVICE_COOKIE), DEVICE_SECONDS)
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
            if not csrf_ok(await request.form(), sess):
                return JSONResponse({"error": "bad CSRF token"}, status_code=403)
            async with self.runtime.db.session() as s:
                await record(s, REVOKED, sess["sid"], self.runtime.clock.now())
        resp = RedirectResponse("/admin/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/admin")
        return resp
