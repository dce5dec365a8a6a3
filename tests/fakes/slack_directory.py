"""The fake Slack Web API plus what internal updates ask: people, user groups, channel members.

Extends :class:`tests.fakes.slack_api.FakeSlack` (kept as it is) with paginated ``users.list``
(``include_locale``), ``users.profile.get`` (custom profile fields), ``usergroups.list``,
``usergroups.users.list`` and paginated ``conversations.members``.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.slack_api import FakeSlack


class FakeSlackDirectory(FakeSlack):
    def __init__(self, page_size: int = 2) -> None:
        super().__init__()
        self.page_size = page_size
        self.custom_fields: dict[str, dict[str, dict[str, str]]] = {}
        self.usergroups: list[dict[str, Any]] = []
        self.channels: dict[str, list[str]] = {}

    def add_user(
        self,
        uid: str,
        name: str,
        *,
        tz: str = "Europe/Berlin",
        locale: str = "en-US",
        title: str = "",
        fields: dict[str, str] | None = None,
        fields_in_list: bool = True,
        **extra: Any,
    ) -> None:
        """A workspace member; ``fields`` are custom profile fields by field id."""
        custom = {k: {"value": v, "alt": ""} for k, v in (fields or {}).items()}
        self.custom_fields[uid] = custom
        profile: dict[str, Any] = {
            "real_name": name,
            "display_name": name.split()[0],
            "email": f"{name.split()[0].lower()}@example.com",
            "title": title,
        }
        if fields_in_list and custom:
            profile["fields"] = custom
        self.users[uid] = {
            "id": uid,
            "name": name.split()[0].lower(),
            "real_name": name,
            "tz": tz,
            "locale": locale,
            "deleted": False,
            "is_bot": False,
            "profile": profile,
            **extra,
        }

    def _page(self, items: list[Any], p: dict[str, Any], key: str) -> dict[str, Any]:
        start = int(p.get("cursor") or 0)
        end = start + self.page_size
        nxt = str(end) if end < len(items) else ""
        return {key: items[start:end], "response_metadata": {"next_cursor": nxt}}

    async def m_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        members = []
        for u in self.users.values():
            u = dict(u)
            if str(p.get("include_locale", "")).lower() not in ("true", "1"):
                u.pop("locale", None)
            members.append(u)
        return self._page(members, p, "members")

    async def m_users_profile_get(self, p: dict[str, Any]) -> dict[str, Any]:
        uid = str(p.get("user"))
        user = self.users.get(uid)
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"profile": {**user["profile"], "fields": self.custom_fields.get(uid, {})}}

    async def m_usergroups_list(self, p: dict[str, Any]) -> dict[str, Any]:
        with_users = str(p.get("include_users", "")).lower() in ("true", "1")
        groups = [
            {k: v for k, v in g.items() if with_users or k != "users"} for g in self.usergroups
        ]
        return {"usergroups": groups}

    async def m_usergroups_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        g = next((g for g in self.usergroups if g["id"] == p.get("usergroup")), None)
        if g is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"users": list(g["users"])}

    async def m_conversations_members(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel"))
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        return self._page(self.channels[channel], p, "members")
