"""The staff console under ``/admin``: first-start setup, login, staff accounts and invites,
the live inbox, every conversation, the contact panel with export and erase.

Security: staff log in with their own account (argon2id hashes, ``bot.staff``) or, as a
fallback for deployments without accounts, the shared ``CONCIERGE_ADMIN_PASSWORD``; failed
logins are throttled per account and browser or address (:class:`LoginThrottle`); the session
is a signed, HttpOnly, SameSite=Strict cookie whose id is revoked server-side at logout (POST
only) and whose account is checked on every request (a disabled account is out at once);
every form (login, setup and invite too) carries a CSRF token; Jinja2 escapes everything it
renders. Export and erase are for the owner role only (403 for an agent).

The pages, a module each: :mod:`~channels.web.admin.console` (the session, the one guard of
every handler, rendering), :mod:`~channels.web.admin.login`, :mod:`~channels.web.admin.accounts`
(setup and invite links), :mod:`~channels.web.admin.staff`, :mod:`~channels.web.admin.inbox`,
:mod:`~channels.web.admin.conversations`, :mod:`~channels.web.admin.contacts`.
"""

from __future__ import annotations

from channels.web.admin.accounts import AccountPages
from channels.web.admin.contacts import ContactPages
from channels.web.admin.conversations import ConversationPages
from channels.web.admin.inbox import InboxPages
from channels.web.admin.staff import StaffPages


class AdminPages(AccountPages, StaffPages, InboxPages, ConversationPages, ContactPages):
    """Every page of the console, on one runtime (``routes`` in ``channels.web.admin``)."""
