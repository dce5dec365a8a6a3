"""Slack for internal updates: people from ``users.list``, Block Kit, reactions and clicks.

Only translation happens here: Slack users become :class:`~bot.internal.employees.EmployeeRecord`
rows, updates become Block Kit (in ``Outbound.metadata["blocks"]``, which the Slack sender posts
as they are), and ``reaction_added`` / ``block_actions`` become calls of
:class:`~bot.internal.service.InternalService`. Employee DMs ("what's new?") reach the engine
through the Slack channel like any message and are answered by ``bot.internal.dm``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.engine import parse_payload
from bot.internal import JOB, service_of
from bot.internal.employees import EmployeeRecord, SyncResult, upsert_employees
from bot.internal.render import (
    FEEDBACK_INTENT,
    PULSE_INTENT,
    Item,
    PlainRenderer,
    Texts,
    feedback_payload,
    team_digest_text,
)
from bot.types import Button, Outbound

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.internal.service import InternalService
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

ACTION_ID = re.compile(r"^internal_(feedback|pulse|link)(:.*)?$")
SECTION = 3000  # characters of one section block
FALLBACK = 2900  # the notification text (the Slack channel splits longer texts)
STANDARD_PROFILE = {"title", "real_name", "display_name", "phone", "pronouns", "email"}


# --- people --------------------------------------------------------------------------------------


def slack_client(runtime: Runtime) -> AsyncWebClient:
    """The Slack channel's Web API client; this feature needs its bot token."""
    from channels.slack import web_client

    if not runtime.settings.slack_bot_token:
        raise LookupError("CONCIERGE_SLACK_BOT_TOKEN is not set")
    return web_client(runtime)


class SlackDirectory:
    """Channel members, asked from Slack when an audience names a channel."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def channel_members(self, channel: str) -> list[str]:
        pages = await self.client.conversations_members(channel=channel, limit=200)
        return [str(m) for m in await every(pages, "members")]


async def every(pages: AsyncSlackResponse, key: str) -> list[Any]:
    """The ``key`` items of every page of a cursor-paginated answer (the SDK asks for the
    next page while ``next_cursor`` is set)."""
    return [item async for page in pages for item in page.get(key) or []]


def _profile_value(user: dict[str, Any], profile: dict[str, Any], key: str) -> str | None:
    """A standard profile key (``title``), a custom field id (``Xf01ABC``), or a user key."""
    if key in profile and isinstance(profile[key], str):
        return profile[key].strip() or None
    field = (profile.get("fields") or {}).get(key)
    if isinstance(field, dict) and str(field.get("value") or "").strip():
        return str(field["value"]).strip()
    if key in user and isinstance(user[key], str):
        return user[key].strip() or None
    return None


def _as_joined(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        if value.isdigit():  # Slack date fields may be epoch seconds
            return datetime.fromtimestamp(int(value), UTC)
        return datetime.combine(date.fromisoformat(value[:10]), time(0), tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


async def fetch_people(
    client: AsyncWebClient, mapping: dict[str, str], *, fetch_custom_fields: bool = False
) -> tuple[list[EmployeeRecord], list[str]]:
    """Everyone in the workspace (bots left out), with user groups, mapped to records."""
    errors: list[str] = []
    users = await every(await client.users_list(limit=200, include_locale=True), "members")
    groups: dict[str, list[str]] | None = {}
    try:
        found: dict[str, list[str]] = {}
        resp = await client.usergroups_list(include_users=True)
        for g in resp.get("usergroups") or []:
            ids = g.get("users")
            if ids is None:
                ids = (await client.usergroups_users_list(usergroup=g["id"])).get("users") or []
            for uid in ids:
                found.setdefault(str(uid), []).extend([str(g["handle"]), str(g["id"])])
        groups = found
    except SlackApiError as e:
        errors.append(f"usergroups.list: {e.response.get('error')} (group audiences not updated)")
        groups = None
    custom = [k for k in mapping.values() if k not in STANDARD_PROFILE]
    records = []
    for u in users:
        if u.get("is_bot") or u.get("is_app_user") or u.get("id") == "USLACKBOT":
            continue
        profile = dict(u.get("profile") or {})
        if fetch_custom_fields and custom and not profile.get("fields"):
            try:
                extra = await client.users_profile_get(user=u["id"])
                profile["fields"] = (extra.get("profile") or {}).get("fields") or {}
            except SlackApiError as e:
                errors.append(f"users.profile.get {u['id']}: {e.response.get('error')}")
        values = {attr: _profile_value(u, profile, key) for attr, key in mapping.items()}
        locale = str(u.get("locale") or "")
        records.append(
            EmployeeRecord(
                slack_user_id=str(u["id"]),
                email=profile.get("email") or None,
                name=str(profile.get("real_name") or u.get("real_name") or u.get("name") or ""),
                department=values.get("department"),
                title=values.get("title"),
                language=values.get("language") or (locale[:2].lower() if locale else None),
                timezone=u.get("tz") or None,
                joined_at=_as_joined(values.get("joined_at")),
                groups=None if groups is None else groups.get(str(u["id"]), []),
                active=not u.get("deleted", False),
            )
        )
    return records, errors


async def sync_employees(svc: InternalService, client: AsyncWebClient | None = None) -> SyncResult:
    """``users.list`` -> employees (profile fields mapped by ``CONCIERGE_INTERNAL_PROFILE_FIELDS``)."""
    client = client or slack_client(svc.runtime)
    records, errors = await fetch_people(
        client, svc.config.profile_fields, fetch_custom_fields=svc.config.fetch_custom_fields
    )
    async with svc.db.session() as s:
        result = await upsert_employees(
            s, records, now=svc.runtime.clock.now(), source="slack", deactivate_missing=True
        )
    result.errors += errors
    return result


# --- Block Kit ---------------------------------------------------------------------------------

_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[-*]\s+", re.MULTILINE)


def to_mrkdwn(markdown: str) -> str:
    """Markdown as Slack mrkdwn: bold, links, headings, bullets."""
    text = markdown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", text)
    text = _HEADING.sub(lambda m: f"*{m.group(1).strip()}*", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    return _BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit], "emoji": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION]}}


def _sections(text: str) -> list[dict[str, Any]]:
    """A long text as several sections, cut between paragraphs where possible."""
    out: list[dict[str, Any]] = []
    rest = text.strip()
    while rest:
        if len(rest) <= SECTION:
            out.append(_section(rest))
            break
        cut = rest.rfind("\n\n", 0, SECTION)
        if cut <= 0:
            cut = rest.rfind("\n", 0, SECTION)
        if cut <= 0:
            cut = SECTION
        out.append(_section(rest[:cut]))
        rest = rest[cut:].strip()
    return out or [_section(" ")]


class SlackRenderer(PlainRenderer):
    """The plain message plus its Block Kit copy in ``metadata["blocks"]``."""

    def update(self, item: Item) -> Outbound:
        plain = super().update(item)
        return _with_blocks(plain, self.blocks(item))

    def digest(self, items: list[Item], language: str) -> Outbound:
        plain = super().digest(items, language)
        blocks: list[dict[str, Any]] = [
            _section(self.t("digest_intro", language, count=len(items)))
        ]
        for it in items:
            blocks.append({"type": "divider"})
            line = f"*{it.title}*\n{to_mrkdwn(it.summary(300))}"
            if it.links:
                line += "\n" + " · ".join(f"<{ln['url']}|{ln['title']}>" for ln in it.links)
            blocks.append(_section(line))
            if it.pulse:
                blocks += self._pulse(it)
        return _with_blocks(plain, blocks[:50])

    def blocks(self, item: Item) -> list[dict[str, Any]]:
        if item.team is not None:
            text = team_digest_text(item.team, self.t, item.language)
            return [s for part in text.split("\n\n") if part.strip() for s in _sections(part)]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": _plain(item.title, 150)},
            *_sections(to_mrkdwn(item.body)),
        ]
        if item.links:
            blocks.append(
                _actions(
                    {
                        "type": "button",
                        "text": _plain(link["title"]),
                        "url": link["url"],
                        "action_id": f"internal_link:{i}",
                        "value": feedback_payload(item.update_id, f"link:{i}"),
                    }
                    for i, link in enumerate(item.links[:5])
                )
            )
        if item.pulse:
            return blocks + self._pulse(item)
        buttons = self.buttons(item)
        if not buttons:
            return blocks
        main = [b for b in buttons if '"rating:' not in b.payload]
        ratings = [b for b in buttons if '"rating:' in b.payload]
        blocks.append(
            _actions(
                _button(b, f"internal_feedback:{i}", primary=i == 0) for i, b in enumerate(main)
            )
        )
        blocks.append(
            {"type": "context", "elements": [_mrkdwn(self.t("rate_prompt", item.language))]}
        )
        blocks.append(_actions(_button(b, f"internal_feedback:rating:{b.title}") for b in ratings))
        return blocks

    def _pulse(self, item: Item) -> list[dict[str, Any]]:
        assert item.pulse is not None
        out: list[dict[str, Any]] = [_section(f"*{item.pulse['question']}*")]
        buttons = self.buttons(item)
        for start in range(0, len(buttons), 5):  # at most 5 buttons look right in a row
            row = enumerate(buttons[start : start + 5])
            out.append(_actions(_button(b, f"internal_pulse:{start + i}") for i, b in row))
        if item.pulse.get("anonymous"):
            note = self.t("pulse_anonymous_note", item.language, min=item.pulse["min"])
            out.append({"type": "context", "elements": [_mrkdwn(note)]})
        return out


def _actions(elements: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def _button(b: Button, action_id: str, *, primary: bool = False) -> dict[str, Any]:
    """A Block Kit button that sends ``b``'s payload."""
    button = {"type": "button", "text": _plain(b.title), "value": b.payload, "action_id": action_id}
    return {**button, "style": "primary"} if primary else button


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _with_blocks(plain: Outbound, blocks: list[dict[str, Any]]) -> Outbound:
    text = plain.text if len(plain.text) <= FALLBACK else plain.text[: FALLBACK - 1] + "…"
    return replace(plain, text=text, metadata={**plain.metadata, "blocks": blocks})


# --- events and clicks ---------------------------------------------------------------------------


async def on_reaction(svc: InternalService, body: dict[str, Any], removed: bool = False) -> bool:
    """``reaction_added`` / ``reaction_removed``: counted once per Slack event id."""
    event = body.get("event") or {}
    item = event.get("item") or {}
    if item.get("type") != "message" or not event.get("user") or not item.get("ts"):
        return False
    event_id = str(
        body.get("event_id") or f"{event.get('user')}:{item['ts']}:{event.get('event_ts')}"
    )
    return await svc.reaction(
        event_key=f"slack-event:{event_id}",
        slack_user=str(event["user"]),
        channel=item.get("channel"),
        ts=str(item["ts"]),
        reaction=str(event.get("reaction") or ""),
        removed=removed,
    )


async def on_action(svc: InternalService, body: dict[str, Any], action: dict[str, Any]) -> bool:
    """A pressed update or pulse button: recorded once, answered in the message's thread."""
    parsed = parse_payload(str(action.get("value") or ""))
    user = (body.get("user") or {}).get("id")
    if parsed is None or not user:
        return False
    intent = parsed["intent"]["name"]
    values = {e["entity"]: e["value"] for e in parsed["entities"]}
    container = body.get("container") or {}
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    event_key = f"slack-action:{body.get('trigger_id') or action.get('action_ts')}"
    now = svc.runtime.clock.now()
    answer: Callable[..., Awaitable[str | None]]  # feedback and pulse_answer take the same
    async with svc.db.session() as s:
        emp = await svc.employee_by_slack(s, str(user))
        if emp is None:
            return False
        if intent == FEEDBACK_INTENT:
            answer, of = svc.feedback, "update"
        elif intent == PULSE_INTENT:
            answer, of = svc.pulse_answer, "survey"
        else:
            return False
        try:
            what, value = int(values[of]), str(values["value"])
            text = await answer(s, emp, what, value, event_key=event_key, now=now)
        except (KeyError, TypeError, ValueError):
            return False
        if text is None:
            return False
        if text:
            await svc.send_to(
                s,
                emp,
                svc.renderer.text(text, thread_id=str(ts) if ts else None),
                key=f"internal:reply:{event_key}",
                now=now,
            )
    svc.runtime.worker.wake()
    return True


def declare(svc: InternalService) -> None:
    """Employees are written to on Slack, which can write first (``choose_reach`` decides by
    this even where the sender is not running, as in ``concierge internal send``)."""
    from channels.slack import CAPABILITIES, CHANNEL

    svc.channel, svc.channel_capabilities = CHANNEL, CAPABILITIES


def attach(svc: InternalService, client: AsyncWebClient | None = None) -> None:
    """Render updates as Block Kit and ask Slack for channel members (no listeners)."""
    runtime = svc.runtime
    declare(svc)
    svc.renderer = SlackRenderer(Texts(runtime.responses, runtime.settings.default_language))
    svc.directory = SlackDirectory(client or slack_client(runtime))


def register(app: AsyncApp, runtime: Runtime) -> None:
    """Called by the Slack channel with its Bolt app: listeners for reactions and our buttons,
    Block Kit rendering, channel audiences, and a periodic people sync."""
    try:
        svc = service_of(runtime)
    except LookupError:
        return

    async def reaction_added(body: dict[str, Any]) -> None:
        await on_reaction(svc, body)

    async def reaction_removed(body: dict[str, Any]) -> None:
        await on_reaction(svc, body, removed=True)

    async def action(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await on_action(svc, body, action)

    app.event("reaction_added")(reaction_added)
    app.event("reaction_removed")(reaction_removed)
    app.action(ACTION_ID)(action)

    client: AsyncWebClient = app.client
    attach(svc, client)
    hours = svc.config.slack_sync_hours
    if hours > 0:
        svc.people_ready = False  # updates wait for the first sync (or its failure)

        async def sync_loop() -> None:
            while True:
                try:
                    log.info("Slack people sync: %s", await sync_employees(svc, client))
                except Exception:
                    log.exception("Slack people sync failed")
                if not svc.people_ready:
                    svc.people_ready = True
                    runtime.jobs.wake(JOB)  # what waited for the sync goes now
                await asyncio.sleep(hours * 3600)

        runtime.add_background(sync_loop)
