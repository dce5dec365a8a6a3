"""The opening message of a chat, per language, from the content (issue 23).

``shop.yml`` names the greeting response (``utter_greeting``) and a few suggested intents; each
suggestion becomes a quick reply titled by ``utter_ask_<intent>`` (the clarify buttons' titles)
whose payload asks that question. For anonymous visitors the greeting of every language is
computed once at startup (no database read when a chat opens). For an identified customer the
lifecycle stage picks the variant (``condition`` on the slot ``stage`` in responses.yml: a new
buyer in onboarding is offered the tutorial, a regular is thanked, a lapsed one welcomed back),
and an open tutorial or flow comes first: the greeting offers to continue it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.types import Button, Outbound

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.runtime import Runtime
    from bot.storage.models import Contact


class Greetings:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.anonymous: dict[str, Outbound | None] = {
            lang: self.render(lang, None) for lang in runtime.settings.languages
        }

    def language(self, wanted: str | None, contact: Contact | None = None) -> str:
        langs = self.runtime.settings.languages
        for cand in (wanted, contact.language if contact else None):
            if cand and cand[:2].lower() in langs:
                return cand[:2].lower()
        return self.runtime.settings.default_language

    def render(self, language: str, stage: str | None) -> Outbound | None:
        """The greeting response for a stage (``None``: nobody in particular) with the
        suggested questions as quick replies where the variant has no buttons of its own."""
        r, shop = self.runtime.responses, self.runtime.shop
        slots = {"stage": stage} if stage is not None else None
        out = r.render(shop.greeting, language, slots=slots)
        if out is None:
            return None
        if out.buttons:
            return out
        buttons = tuple(
            Button(r.topic_title(intent, language), f"/{intent}")
            for intent in shop.suggestions
            if r.has(f"utter_{intent}", language)
        )
        return Outbound(text=out.text, buttons=buttons)

    async def for_contact(
        self, s: AsyncSession, contact: Contact | None, language: str
    ) -> Outbound | None:
        """An identified customer's greeting (their stage, an open flow first); anyone else
        gets the one computed at startup."""
        if contact is None or not contact.user_id:
            return self.anonymous.get(language)
        from bot.lifecycle.service import LifecycleService

        lifecycle = self.runtime.maybe_service(LifecycleService)
        runner = lifecycle.runner if lifecycle is not None else None
        if runner is not None:
            for st in await runner.open_states(s, contact.id):
                flow = runner.book.get(st.flow_id)
                if flow is not None:
                    offer: Outbound = runner._resume_offer(language, flow, st)
                    hello = self.render(language, contact.lifecycle_stage)
                    text = f"{hello.text}\n{offer.text}" if hello is not None else offer.text
                    return Outbound(text=text, buttons=offer.buttons, metadata=offer.metadata)
        return self.render(language, contact.lifecycle_stage)


def frame(out: Outbound | None) -> dict[str, Any] | None:
    """The greeting as the widget shows it (``session.greeting``)."""
    if out is None:
        return None
    return {"text": out.text, "buttons": [b.to_dict() for b in out.buttons]}


def greetings_of(runtime: Runtime) -> Greetings:
    found = runtime.maybe_service(Greetings)
    if found is None:
        found = Greetings(runtime)
        runtime.register(found)
    return found
