"""The live inbox (```/admin/inbox``): open handoffs with their SLA state, one handoff's
conversation and contact panel, and the staff's actions on it. The list polls
```/admin/inbox.json`` and an open handoff its ``messages.json``: new handoffs and messages show
up without a reload."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from bot import inbox
from bot.handoff.models import Handoff
from bot.handoff.service import HandoffService
from bot.staff import list_accounts
from bot.storage.models import Message
from channels.web.admin.console import Console, Session, found, not_found, path_id, signed_in

MAX_REPLY = 20_000


class InboxPages(Console):
    """``/admin/inbox``, one handoff, their JSON for polling, and the actions on a handoff."""

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

    async def _items(self, request: Request, sess: Session) -> list[dict[str, Any]]:
        filt, q = self._filters(request)
        async with self.runtime.db.session() as s:
            items = await inbox.inbox_items(s, filt=filt, me=sess["name"], q=q)
        now = self.runtime.clock.now()
        return [self._item_json(it, now) for it in items]

    @signed_in
    async def inbox_json(self, request: Request, sess: Session) -> Response:
        return JSONResponse({"items": await self._items(request, sess)})

    async def _page(
        self, request: Request, sess: Session, status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        """The inbox page: the list of the request's filter, and ``ctx`` (``current``, the
        handoff open beside it, and its panel)."""
        filt, q = self._filters(request)
        ctx.setdefault("current", None)
        return self.page(
            "admin_inbox.html",
            sess,
            status,
            active="inbox",
            items=await self._items(request, sess),
            filt=filt,
            q=q,
            filters=inbox.FILTERS,
            **ctx,
        )

    @signed_in
    async def inbox(self, request: Request, sess: Session) -> Response:
        return await self._page(request, sess)

    @signed_in
    async def handoff(self, request: Request, sess: Session) -> Response:
        hid = path_id(request, "hid")
        async with self.runtime.db.session() as s:
            h = await s.get(Handoff, hid) if hid else None
            panel = await inbox.contact_panel(s, h.contact_id) if h else None
            messages = await self._messages(s, h) if h else []
            accounts = [a for a in await list_accounts(s) if not a.disabled]
        if h is None:
            return await self._page(request, sess, 404, error="No such handoff.")
        canned = inbox.canned_replies(self.runtime.settings.content_dir)
        lang = h.language or self.runtime.settings.default_language
        return await self._page(
            request,
            sess,
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

    @signed_in
    async def messages_json(self, request: Request, sess: Session) -> Response:
        async with self.runtime.db.session() as s:
            h = await found(s, Handoff, request, "hid", "handoff")
            return JSONResponse({"status": h.status, "messages": await self._messages(s, h)})

    @signed_in
    async def act(self, request: Request, sess: Session) -> Response:
        hid = path_id(request, "hid")
        if hid is None:
            return not_found("handoff")
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
            result = await svc.staff.reply(
                handoff_id=hid, staff=sess["name"], text=text, source="inbox"
            )
            if result == "internal":
                action = "note"
            detail["result"] = result
        elif action in ("take", "resolve", "handback"):
            detail["result"] = await svc.staff.action(hid, action, sess["name"])
        elif action == "assign":
            to = str(form.get("assignee") or "").strip() or None
            async with self.runtime.db.session() as s:
                names = {a.name for a in await list_accounts(s) if not a.disabled}
                if to is not None and to not in names and to != sess["name"]:
                    return JSONResponse({"error": f"no staff account {to!r}"}, status_code=400)
                if await inbox.assign(s, hid, to) is None:
                    return JSONResponse({"error": "no open handoff"}, status_code=404)
            detail["assignee"] = to
            svc.notify(hid)
        else:
            return JSONResponse({"error": f"unknown action {action!r}"}, status_code=400)
        async with self.runtime.db.session() as s:
            await self.log(s, sess, action, handoff_id=hid, detail=detail)
        return RedirectResponse(f"/admin/inbox/{hid}", status_code=303)
