"""The staff console (``/admin``): see :mod:`channels.web.admin.pages`.

``routes(runtime)`` is the entry point ``channels.app`` calls; the dashboard and FAQ-gap pages
are :class:`~channels.web.admin.console.Console` pages too (the same session guard,
``signed_in`` / ``owner_only``) on ``templates/admin_base.html``.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Route

from bot.runtime import Runtime
from channels.web.admin.pages import AdminPages
from channels.web.admin.throttle import LoginThrottle

__all__ = ["AdminPages", "LoginThrottle", "routes"]


def routes(runtime: Runtime) -> list[BaseRoute]:
    from channels.web import dashboard, gaps

    a = AdminPages(runtime)
    return [
        *dashboard.routes(runtime),
        *gaps.routes(runtime),
        Route("/admin", lambda r: RedirectResponse("/admin/inbox", status_code=303)),
        Route("/admin/login", a.login, methods=["GET", "POST"]),
        Route("/admin/logout", a.logout, methods=["POST"]),
        Route("/admin/setup", a.setup, methods=["GET", "POST"]),
        Route("/admin/invite", a.accept_invite, methods=["GET", "POST"]),
        Route("/admin/staff", a.staff_page),
        Route("/admin/staff/invite", a.staff_invite, methods=["POST"]),
        Route("/admin/staff/{sid:int}/{action:str}", a.staff_toggle, methods=["POST"]),
        Route("/admin/inbox", a.inbox),
        Route("/admin/inbox.json", a.inbox_json),
        Route("/admin/inbox/{hid:int}", a.handoff),
        Route("/admin/inbox/{hid:int}/messages.json", a.messages_json),
        Route("/admin/inbox/{hid:int}/{action:str}", a.act, methods=["POST"]),
        Route("/admin/conversations", a.conversations),
        Route("/admin/conversations/{cid:int}", a.conversation),
        Route("/admin/contacts", a.contacts),
        Route("/admin/contacts/{cid:int}", a.contact),
        Route("/admin/contacts/{cid:int}/export.json", a.contact_export),
        Route("/admin/contacts/{cid:int}/erase", a.contact_erase, methods=["POST"]),
    ]
