"""Contacts (```/admin/contacts```): search, the contact panel, and for the owner only the
GDPR export and erase."""

from __future__ import annotations

import json

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from bot import inbox
from bot.privacy import erase_contact, export_contact
from bot.storage.models import Contact, Conversation
from channels.web.admin.console import Console, Session, found, owner_only, path_id, signed_in


class ContactPages(Console):
    """``/admin/contacts``, one contact, and its export and erase (owner only)."""

    @signed_in
    async def contacts(self, request: Request, sess: Session) -> Response:
        q = (request.query_params.get("q") or "").strip()[:200]
        async with self.runtime.db.session() as s:
            rows = await inbox.find_contacts(s, q)
        return self.page("admin_contacts.html", sess, active="contacts", rows=rows, q=q)

    @signed_in
    async def contact(self, request: Request, sess: Session) -> Response:
        cid = path_id(request, "cid")
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

    @owner_only
    async def contact_export(self, request: Request, sess: Session) -> Response:
        async with self.runtime.db.session() as s:
            c = await found(s, Contact, request, "cid", "contact")
            doc = await export_contact(s, c)
            await self.log(s, sess, "export", contact_id=c.id)
        return Response(
            json.dumps(doc, ensure_ascii=False, indent=2, default=str),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="contact-{c.id}.json"'},
        )

    @owner_only
    async def contact_erase(self, request: Request, sess: Session) -> Response:
        async with self.runtime.db.session() as s:
            c = await found(s, Contact, request, "cid", "contact")
            cid = c.id
            await erase_contact(
                s, c, by=sess["name"], by_id=sess["staff_id"], now=self.runtime.clock.now()
            )
        return self.page(
            "admin_contact.html", sess, active="contacts", panel=None, erased=True, erased_id=cid
        )
