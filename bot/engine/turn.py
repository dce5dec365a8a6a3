"""One turn of a conversation as the policies see it: :class:`Turn`, its typed per-turn state,
and the shapes of the extension points (policies, prefetchers, after-turn hooks)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Contact, Conversation, Identity, Message
from bot.types import Inbound, Outbound

if TYPE_CHECKING:
    from bot.engine.core import Engine

FALLBACK = "nlu_fallback"
_PAYLOAD = re.compile(r"^/(?P<intent>[\w./-]+)(?P<json>\{.*\})?$", re.DOTALL)
V = TypeVar("V")


class NLU(Protocol):
    """Any NLU backend: returns Rasa's ``/model/parse`` shape (plus ``language``)."""

    async def parse(self, text: str, language_hint: str | None = None) -> dict[str, Any]: ...


class StateKey(Generic[V]):
    """A typed slot of :class:`TurnState`, declared once by the feature that owns it:
    ``RECENT = StateKey[list[str]]("handoff.recent")``. ``per_contact``: the value is about
    the turn's contact, and is forgotten when the chat is linked to another contact."""

    __slots__ = ("name", "per_contact")

    def __init__(self, name: str, *, per_contact: bool = False) -> None:
        self.name = name
        self.per_contact = per_contact

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"


class TurnState:
    """What features keep on a turn between their hooks (a prefetch's rows, "handled"), by
    typed key instead of attribute names."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[StateKey[Any], Any] = {}

    def get(self, key: StateKey[V]) -> V | None:
        return cast("V | None", self._values.get(key))

    def set(self, key: StateKey[V], value: V) -> V:
        self._values[key] = value
        return value

    def setdefault(self, key: StateKey[V], default: V) -> V:
        return cast(V, self._values.setdefault(key, default))

    def forget_contact(self) -> None:
        """The turn now belongs to another contact: drop what was read for the old one."""
        for key in [k for k in self._values if k.per_contact]:
            del self._values[key]


@dataclass
class Turn:
    """Everything a policy needs to answer one inbound message."""

    engine: Engine
    session: AsyncSession
    inbound: Inbound
    contact: Contact
    identity: Identity
    conversation: Conversation
    message: Message
    now: datetime
    language: str
    parse: dict[str, Any]
    replies: list[Outbound] = field(default_factory=list)
    # filled by policies for the transcript: intent/confidence stored with each reply
    answer_meta: dict[str, Any] = field(default_factory=dict)

    # what the features keep on this turn between their hooks
    state: TurnState = field(default_factory=TurnState)

    @property
    def intent(self) -> str:
        return str(self.parse["intent"]["name"])

    @property
    def confidence(self) -> float:
        return float(self.parse["intent"]["confidence"])

    @property
    def entities(self) -> dict[str, Any]:
        return {e["entity"]: e.get("value") for e in self.parse.get("entities", [])}

    @property
    def slots(self) -> dict[str, Any]:
        """What a response's ``condition`` may look at: the person's lifecycle stage."""
        return {"stage": self.contact.lifecycle_stage}

    def say(self, name: str, **values: Any) -> Outbound | None:
        """Queue the response ``name`` in the turn's language (the variant for the person)."""
        out = self.engine.responses.render(name, self.language, slots=self.slots, **values)
        if out is not None:
            self.replies.append(out)
        return out

    def text(self, name: str, **values: Any) -> str:
        return self.engine.responses.text(name, self.language, slots=self.slots, **values)


Policy = Callable[[Turn], Awaitable[bool]]
"""A policy answers a turn (appends to ``turn.replies``) and returns True, or returns False."""

AfterTurn = Callable[[Turn], Awaitable[None]]

Prefetch = Callable[[AsyncSession, list["Turn"]], Awaitable[None]]
"""Reads, for all turns of a batch at once, what a policy will need (kept on each turn)."""


@dataclass
class TurnResult:
    replies: list[Outbound]
    message_id: int | None
    contact_id: int | None
    outbox_ids: list[int]
    duplicate: bool = False
    refused: str | None = None
    language: str | None = None


def parse_payload(payload: str) -> dict[str, Any] | None:
    """A Rasa-style button payload ``/intent{"slot": "value"}`` as a parse result."""
    m = _PAYLOAD.match(payload.strip())
    if not m:
        return None
    entities: list[dict[str, Any]] = []
    if m.group("json"):
        try:
            values = json.loads(m.group("json"))
        except json.JSONDecodeError:
            return None
        if isinstance(values, dict):
            entities = [
                {"entity": k, "value": v, "start": None, "end": None, "extractor": "payload"}
                for k, v in values.items()
            ]
    name = m.group("intent")
    return {
        "text": payload,
        "intent": {"name": name, "confidence": 1.0},
        "entities": entities,
        "intent_ranking": [{"name": name, "confidence": 1.0}],
    }
