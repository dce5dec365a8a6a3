"""The engine policy behind deep links: ``/start <token>`` (Telegram), ``link <token>``
(Slack or any channel), and ``/start <name>`` for flows with a ``link:`` trigger."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from bot.contacts import link_user
from bot.lifecycle.links import looks_like_token, verify_start_token

if TYPE_CHECKING:
    from bot.engine import Turn
    from bot.lifecycle.service import LifecycleService

log = logging.getLogger(__name__)

_TEXT = re.compile(r"^\s*(?:/start|link|/link)\s+(\S{1,64})\s*$", re.IGNORECASE)


def start_payload(turn: Turn) -> str | None:
    meta = turn.inbound.metadata or {}
    payload = meta.get("start_payload")
    if isinstance(payload, str) and payload:
        return payload
    if turn.inbound.payload is None:
        m = _TEXT.match(turn.inbound.text)
        if m:
            return m.group(1)
    return None


class LinkPolicy:
    def __init__(self, svc: LifecycleService) -> None:
        self.svc = svc

    def secret(self) -> str | None:
        rt = self.svc.runtime
        return (
            self.svc.settings.link_secret
            or rt.settings.events_secret
            or rt.settings.web_identity_secret
        )

    async def __call__(self, turn: Turn) -> bool:
        payload = start_payload(turn)
        if payload is None:
            return False
        # "/start <token>" says nothing about the language: the platform's hint does
        hint = (turn.inbound.language or "")[:2]
        if hint in turn.engine.languages and hint != turn.language:
            turn.language = hint
            turn.contact.language = hint
        flows = self.svc.book.by_trigger("link", payload)
        if flows:
            from bot.flows.runner import Run

            run = Run(turn.session, turn.contact, turn.now, turn.language, turn)
            await self.svc.runner.start(run, flows[0], trigger=f"link:{payload}")
            turn.answer_meta.update(intent="link", confidence=1.0, flow=flows[0].id)
            return True
        if not looks_like_token(payload):
            return False
        secret = self.secret()
        user_id = verify_start_token(secret, payload, now=turn.now) if secret else None
        turn.answer_meta.update(intent="link", confidence=1.0)
        if user_id is None:
            turn.say("utter_link_invalid")
            turn.answer_meta["linked"] = False
            return True
        await self.link(turn, user_id)
        turn.say("utter_linked")
        turn.answer_meta["linked"] = True
        return True

    async def link(self, turn: Turn, user_id: str) -> None:
        """Make this chat identity the shop user's; what the anonymous contact had moves along."""
        s = turn.session
        source = turn.contact
        if source.user_id == user_id:
            return
        contact = await link_user(s, turn.identity, user_id, turn.now)
        if contact is not source:
            turn.contact = contact
            turn.identity.contact_id = contact.id
            conv = await turn.engine.open_conversation(s, contact, turn.now)
            turn.conversation = conv
            turn.message.contact_id = contact.id
            turn.message.conversation_id = conv.id
        turn.state.forget_contact()
        log.info("%s identity linked to shop user %s", turn.inbound.channel, user_id)
