"""Channel-neutral message types.

Everything that crosses the boundary between ``channels/`` (platform adapters) and ``bot/``
(the engine, flows, scheduler) is one of these types. ``bot/`` never imports a channel SDK;
``channels/`` never holds a business rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Purpose(StrEnum):
    """Why a message is sent: consent rules differ (design §7)."""

    SERVICE = "service"
    MARKETING = "marketing"


@dataclass(frozen=True, slots=True)
class Button:
    """A quick reply / inline-keyboard button / Block Kit button.

    ``payload`` is what the engine receives when the button is pressed (Rasa style:
    ``/intent`` or ``/intent{"slot": "value"}`` or any text).
    """

    title: str
    payload: str
    url: str | None = None

    def to_dict(self) -> dict[str, str]:
        d = {"title": self.title, "payload": self.payload}
        if self.url:
            d["url"] = self.url
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Button:
        return cls(
            title=str(d["title"]), payload=str(d.get("payload", d["title"])), url=d.get("url")
        )


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a person, as any channel delivers it.

    ``external_id``: the person on the platform (Telegram user id, Slack user id, web visitor id).
    ``address``: where replies go on that platform (Telegram chat id, Slack channel/DM id);
    defaults to ``external_id``.
    ``payload``: set when the person pressed a button (the button's payload); ``text`` then
    carries the button title for the transcript.
    ``platform_message_id``: the platform's id, used to drop duplicates (retries, redeliveries).
    ``delivery_id``: the id of the platform's delivery that carried it (Slack's ``event_id``),
    recorded as seen in the same transaction as the turn, so that a delivery acknowledged is a
    turn stored and a redelivery after that is dropped.
    """

    channel: str
    external_id: str
    text: str
    address: str | None = None
    payload: str | None = None
    platform_message_id: str | None = None
    display_name: str | None = None
    language: str | None = None
    thread_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    delivery_id: str | None = None

    @property
    def reply_address(self) -> str:
        return self.address or self.external_id


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to a person. Serialisable to the outbox as JSON."""

    text: str
    buttons: tuple[Button, ...] = ()
    purpose: Purpose = Purpose.SERVICE
    sender: str = "bot"  # bot | staff | system
    thread_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text, "purpose": str(self.purpose), "sender": self.sender}
        if self.buttons:
            d["buttons"] = [b.to_dict() for b in self.buttons]
        if self.thread_id:
            d["thread_id"] = self.thread_id
        if self.metadata:
            d["metadata"] = self.metadata
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outbound:
        return cls(
            text=str(d.get("text", "")),
            buttons=tuple(Button.from_dict(b) for b in d.get("buttons") or ()),
            purpose=Purpose(d.get("purpose", "service")),
            sender=str(d.get("sender", "bot")),
            thread_id=d.get("thread_id"),
            metadata=dict(d.get("metadata") or {}),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """An outbox row handed to a channel sender."""

    outbox_id: int
    channel: str
    address: str
    message: Outbound
    contact_id: int | None
    attempt: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class SendResult:
    platform_message_id: str | None = None


class DeliveryError(Exception):
    """Base for a failed send. The delivery worker decides what happens next."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryAfter(DeliveryError):
    """The platform asked us to wait (Telegram 429 ``retry_after``, Slack ``Retry-After``)."""

    def __init__(self, seconds: float, reason: str = "rate limited") -> None:
        super().__init__(f"{reason} (retry after {seconds:g}s)")
        self.seconds = seconds


class TransientError(DeliveryError):
    """A 5xx, a timeout, a reset connection: retry with backoff."""


class PermanentError(DeliveryError):
    """Will never succeed as it is (bad request): dead-letter at once."""


class Unreachable(PermanentError):
    """The person cannot be reached on this identity (blocked the bot, left): mark it so."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can do, declared by its :class:`Sender`; ``bot`` decides by these, never
    by a channel's name.

    ``push``: the channel can write to a person who is not writing right now (flows, prompts,
    updates and notices go only to such channels); ``text_limit``: characters of one message
    (longer texts are split); ``buttons``: quick replies are shown as buttons; ``threads``:
    replies can go into a thread.
    """

    push: bool = False
    text_limit: int | None = None
    buttons: bool = False
    threads: bool = False


class Sender(Protocol):
    """What a channel adapter offers the delivery worker, and what its channel can do."""

    channel: str
    capabilities: Capabilities

    async def send(self, delivery: Delivery) -> SendResult: ...
