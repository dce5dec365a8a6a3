"""New accounts from a one-time link: ``/admin/setup`` (the first owner, from the link
``concierge run`` prints) and ``/admin/invite`` (an account the owner invited)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bot.staff import (
    OWNER,
    StaffError,
    check_setup_token,
    count_staff,
    create_account,
    log_action,
    refresh_staff_count,
)
from bot.storage.seen import SeenDelivery, record
from channels.web.admin.console import INVITE_SECONDS, LOGIN_COOKIE, USED_SETUP, unsign
from channels.web.admin.login import LoginPages


class AccountPages(LoginPages):
    """The setup and invitation pages (their forms carry the login pages' CSRF nonce)."""

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
            invite = unsign(self.invite_signer, token, INVITE_SECONDS)
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

        def account_form(status: int = 200, **ctx: Any) -> HTMLResponse:
            return self.nonce_form(
                "admin_account.html", path, status, kind=kind, token=token, invite=fixed, **ctx
            )

        if request.method == "GET":
            return account_form()
        form = await request.form()
        if not self._nonce_ok(request, str(form.get("csrf") or "")):
            return account_form(403, error="The form expired or came from elsewhere; try again.")
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
            return account_form(400, error=error, name=name, email=email)
        await refresh_staff_count(self.runtime)
        resp = RedirectResponse("/admin/inbox", status_code=303)
        self._set_session(request, resp, name=who, staff_id=staff_id, role=role)
        resp.delete_cookie(LOGIN_COOKIE, path=path)
        return resp

    async def setup(self, request: Request) -> Response:
        return await self._new_account_page(request, "setup")

    async def accept_invite(self, request: Request) -> Response:
        return await self._new_account_page(request, "invite")
