"""Whether, where and when a proactive message may go: one rule for every feature.

Flows started outside a turn, prompts, internal updates and handoff notices all ask
:func:`choose_reach` before they write to the outbox. It applies, in this order:

1. *opt-out*: a person who said stop gets no marketing (``opted_out``);
2. the feature's own *hold* (an open handoff, a complaint), passed in as a reason;
3. *capability*: only channels whose sender can write first (``Capabilities.push``) count; a
   person with no such identity is ``unreachable``;
4. *consent* for the message's purpose on that channel (a channel's own answer beats the ``*``
   answer; service messages go unless refused; marketing needs a yes, or the EU soft opt-in for
   existing customers when the shop allows it): ``no_consent``;
5. the *window* (quiet hours, working hours, holidays): outside it the message is deferred to
   the moment it opens, with the window's reason (``quiet_hours``, ``holiday``, ...).

The channel is the person's preferred one first, then the feature's order, then the one seen
last. The answer is one :class:`Decision`: send now on a channel, defer until a time, or skip,
always with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.types import Capabilities, Sender

SEND, DEFER, SKIP, CANCEL = "send", "defer", "skip", "cancel"
SERVICE, MARKETING = "service", "marketing"
NOTHING = Capabilities()  # a channel without a sender: no push


def capabilities(senders: Mapping[str, Sender]) -> dict[str, Capabilities]:
    """What each channel with a sender can do (``runtime.senders``)."""
    return {channel: sender.capabilities for channel, sender in senders.items()}


@dataclass(frozen=True, slots=True)
class Reach:
    """One identity a person may be written to on."""

    channel: str
    address: str
    last_seen_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """``send`` (with channel and address), ``defer`` (until), ``skip`` / ``cancel`` (reason)."""

    outcome: str
    reason: str | None = None
    channel: str | None = None
    address: str | None = None
    until: datetime | None = None
    detail: str | None = None
    soft_opt_in: bool = False

    @property
    def send(self) -> bool:
        return self.outcome == SEND


class Window(Protocol):
    """When messages may go (working hours, the end of quiet hours), in its own time zone."""

    def closed(self, when: datetime) -> str | None:
        """Why nothing may go at ``when`` (a reason), or None when the window is open."""
        ...

    def next_open(self, when: datetime) -> datetime:
        """When the window opens next (``when`` itself if open)."""
        ...


@dataclass(frozen=True, slots=True)
class Person:
    """What the rules need to know about the person written to."""

    consents: Mapping[tuple[str, str], bool]
    opted_out: bool = False
    preferred_channel: str | None = None
    existing_customer: bool = False


def consented(
    purpose: str, channel: str, person: Person, *, soft_opt_in: bool = False
) -> tuple[bool, bool]:
    """(allowed, by soft opt-in). A channel's own answer beats the ``*`` answer."""
    given = person.consents.get((channel, purpose), person.consents.get(("*", purpose)))
    if purpose != MARKETING:
        return given is not False, False
    if given is not None:
        return given, False
    if soft_opt_in and person.existing_customer:
        return True, True
    return False, False


def choose_reach(
    options: Sequence[Reach],
    person: Person,
    *,
    purpose: str,
    capabilities: Mapping[str, Capabilities],
    now: datetime,
    order: Sequence[str] = (),
    hold: str | None = None,
    window: Window | None = None,
    soft_opt_in: bool = False,
) -> Decision:
    """The one decision for a proactive message to ``person`` (see the module's docstring)."""
    if purpose == MARKETING and person.opted_out:
        return Decision(SKIP, "opted_out")
    if hold is not None:
        return Decision(SKIP, hold)
    pushable = [r for r in options if capabilities.get(r.channel, NOTHING).push]
    if not pushable:
        detail = ", ".join(sorted({r.channel for r in options})) or None
        return Decision(SKIP, "unreachable", detail=detail)
    ranked = [c for c in (person.preferred_channel, *order) if c]

    def rank(r: Reach) -> tuple[int, float]:
        pos = ranked.index(r.channel) if r.channel in ranked else len(ranked)
        return pos, -(r.last_seen_at.timestamp() if r.last_seen_at else 0.0)

    for r in sorted(pushable, key=rank):
        ok, soft = consented(purpose, r.channel, person, soft_opt_in=soft_opt_in)
        if not ok:
            continue
        closed = window.closed(now) if window is not None else None
        if closed is not None:
            assert window is not None
            until = window.next_open(now)
            return Decision(DEFER, closed, channel=r.channel, address=r.address, until=until)
        return Decision(SEND, channel=r.channel, address=r.address, soft_opt_in=soft)
    return Decision(SKIP, "no_consent")
