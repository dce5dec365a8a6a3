"""Staff accounts (```/admin/staff``): the list for everyone, invitations and disabling for
the owner."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from bot.staff import AGENT, ROLES, StaffAccount, list_accounts, refresh_staff_count
from channels.web.admin.console import Console, Session, found, owner_only, signed_in


class StaffPages(Console):
    """``/admin/staff`` and its owner-only actions."""

    @signed_in
    async def staff_page(self, request: Request, sess: Session) -> Response:
        async with self.runtime.db.session() as s:
            accounts = await list_accounts(s)
        return self.page("admin_staff.html", sess, active="staff", accounts=accounts)

    @owner_only
    async def staff_invite(self, request: Request, sess: Session) -> Response:
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
                await self.log(s, sess, "invite", detail={"role": role})
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

    @owner_only
    async def staff_toggle(self, request: Request, sess: Session) -> Response:
        action = request.path_params["action"]
        if action not in ("disable", "enable"):
            return JSONResponse({"error": f"unknown action {action!r}"}, status_code=400)
        async with self.runtime.db.session() as s:
            acc = await found(s, StaffAccount, request, "sid", "account")
            if acc.id == sess["staff_id"]:
                return JSONResponse({"error": "you cannot disable yourself"}, status_code=400)
            acc.disabled = action == "disable"
            await self.log(s, sess, f"staff_{action}", detail={"account": acc.id})
        await refresh_staff_count(self.runtime)
        return RedirectResponse("/admin/staff", status_code=303)
