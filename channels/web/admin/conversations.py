"""Every conversation (```/admin/conversations``): search with facets, and one transcript."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bot import conversations as convs
from bot import inbox
from bot.storage.models import Conversation
from channels.web.admin.console import Console, Session, path_id, signed_in


class ConversationPages(Console):
    """``/admin/conversations`` and one conversation."""

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

    @signed_in
    async def conversations(self, request: Request, sess: Session) -> Response:
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

    @signed_in
    async def conversation(self, request: Request, sess: Session) -> Response:
        cid = path_id(request, "cid")
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
