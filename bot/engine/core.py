"""One turn of a conversation, the same for every channel (design §1).

``Engine.handle(inbound)`` resolves the person, stores the message (dropping platform
redeliveries), asks the NLU, lets the policies pick the replies, and writes each reply to the
transcript and the outbox in the same transaction. Features plug in as *policies* (ordered
handlers that may answer a turn), *prefetchers* (which read what a batch of turns will need in
one statement) and *after-turn hooks*; the engine itself knows none of them.

Turns that arrive while another is being written wait and then go together (group commit): one
transaction, one statement per kind of row for all of them (who wrote, their messages, their
replies, their outbox rows), each turn's policies run one after another in between. A batch
holds one turn per person, so a person's turns keep their order. If anything in a batch fails,
nothing of it is kept and each of its turns runs again in a transaction of its own, so one bad
turn (or a platform's redelivery) costs only itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from bot.clock import Clock, SystemClock
from bot.contacts import create_people, seen
from bot.engine import writer
from bot.engine.policies import offer_person
from bot.engine.turn import (
    NLU,
    AfterTurn,
    Policy,
    Prefetch,
    Turn,
    TurnResult,
    parse_payload,
)
from bot.engine.writer import Reply
from bot.responses import Responses
from bot.signals import Signals
from bot.storage import dialect
from bot.storage.db import Database
from bot.storage.models import Contact, Conversation, Identity, Message
from bot.storage.seen import SeenDelivery
from bot.types import Inbound, Outbound

log = logging.getLogger(__name__)
RECENT_LANGUAGES = 10_000  # people whose last language the engine keeps in memory


@dataclass(slots=True)
class _Pending:
    """A parsed inbound message waiting for its turn."""

    inbound: Inbound
    parse: dict[str, Any]
    unhinted: bool  # nothing told the parse the person's language
    now: datetime
    deliver_inline: bool
    future: asyncio.Future[TurnResult]


class Engine:
    def __init__(
        self,
        db: Database,
        nlu: NLU,
        responses: Responses,
        *,
        languages: list[str],
        default_language: str = "en",
        clock: Clock | None = None,
        max_message_bytes: int = 4096,
        on_enqueued: Callable[[], None] | None = None,
        signals: Signals | None = None,
    ) -> None:
        self.db = db
        self.nlu = nlu
        self.responses = responses
        self.languages = languages
        self.default_language = default_language
        self.clock = clock or SystemClock()
        self.max_message_bytes = max_message_bytes
        self.on_enqueued = on_enqueued
        # the features' signals (the runtime's): the opt-out policy tells them of a "stop"
        self.signals = signals or Signals()
        # what an unsure turn offers: a person, or a way to leave an e-mail (set by the handoff)
        self.offer_person: Callable[[Turn], Outbound] = offer_person
        # longest text a channel takes; longer messages become several (channels set these)
        self.text_limits: dict[str, int] = {}
        self._policies: list[tuple[int, str, Policy]] = []
        self._after: list[AfterTurn] = []
        self._prefetch: list[Prefetch] = []
        # a failed turn: called with the inbound message and the error (after logging)
        self.error_hooks: list[Callable[[Inbound, BaseException], None]] = []
        self.turn_errors: dict[str, int] = {}  # failed turns by channel (for /metrics)
        self._queue: list[_Pending] = []
        self._runner: asyncio.Task[None] | None = None
        # the language each person last wrote in, a hint for short texts ("ok", "hello") the
        # language identifier cannot tell apart; the contact's stored language covers a miss
        self._recent_language: OrderedDict[tuple[str, str], str] = OrderedDict()

    # --- extension points --------------------------------------------------------------
    def add_policy(self, name: str, policy: Policy, priority: int = 100) -> None:
        """Lower ``priority`` runs first. The built-in FAQ policy has priority 1000."""
        self._policies = sorted(
            [*(p for p in self._policies if p[1] != name), (priority, name, policy)],
            key=lambda p: p[0],
        )

    def add_after_turn(self, hook: AfterTurn) -> None:
        self._after.append(hook)

    def add_prefetch(self, fetch: Prefetch) -> None:
        """``fetch(session, turns)`` runs once a batch, after the inbound messages are stored
        and before any policy: one statement for all turns instead of one a turn."""
        self._prefetch.append(fetch)

    @property
    def policy_names(self) -> list[str]:
        return [name for _, name, _ in self._policies]

    # --- the turn ----------------------------------------------------------------------
    async def handle(self, inbound: Inbound, *, deliver_inline: bool = False) -> TurnResult:
        """Process one inbound message. ``deliver_inline``: the caller delivers the replies
        itself (Rasa REST channel: they travel back in the HTTP response)."""
        now = self.clock.now()
        size = len(inbound.text.encode("utf-8"))
        if size > self.max_message_bytes:
            lang = inbound.language if inbound.language in self.languages else None
            text = self.responses.text(
                "utter_message_too_long",
                lang or self.default_language,
                size=size,
                limit=self.max_message_bytes,
            )
            return TurnResult(
                [Outbound(text=text, sender="system")], None, None, [], refused="too_large"
            )

        if self._runner is not None and asyncio.current_task() is self._runner:
            # a policy or hook waiting for a turn of its own would wait for itself
            raise RuntimeError("Engine.handle called from inside a turn; queue a reply instead")
        parse = parse_payload(inbound.payload) if inbound.payload else None
        hint = inbound.language or self._recent_language.get((inbound.channel, inbound.external_id))
        unhinted = False
        if parse is None:
            parse = await self.nlu.parse(inbound.text, hint)
            unhinted = hint is None
        item = _Pending(
            inbound,
            parse,
            unhinted,
            now,
            deliver_inline,
            asyncio.get_running_loop().create_future(),
        )
        self._queue.append(item)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._drain())
        return await item.future

    # --- batches of turns --------------------------------------------------------------
    MAX_BATCH = 32
    """Turns written in one transaction at most."""

    async def _drain(self) -> None:
        """Run the queued turns, a batch at a time, until none is left."""
        batch: list[_Pending] = []
        try:
            while self._queue:
                batch, later, people = [], [], set()
                for item in self._queue:
                    if item.future.done():  # the caller went away before its turn began
                        continue
                    who = (item.inbound.channel, item.inbound.external_id)
                    if who in people or len(batch) >= self.MAX_BATCH:
                        later.append(item)  # the person's next message waits for this one
                    else:
                        people.add(who)
                        batch.append(item)
                self._queue = later
                if batch:
                    await self._run_batch(batch)
        except BaseException:
            for item in [*batch, *self._queue]:
                if not item.future.done():
                    item.future.cancel()
            self._queue = []
            raise

    async def _run_batch(self, batch: list[_Pending]) -> None:
        try:
            async with self.db.session() as s:
                # a turn alone has an error boundary; a batch that fails runs turn by turn
                results = await self._turns(s, batch, guarded=len(batch) == 1)
        except Exception as e:
            if len(batch) == 1:
                self._failed(batch[0], e)
                return
            # nothing of the batch was kept: each turn again, alone, so one costs only itself
            log.debug("a batch of %d turns failed (%r); one at a time", len(batch), e)
            for item in batch:
                try:
                    async with self.db.session() as s:
                        results = await self._turns(s, [item], guarded=True)
                except Exception as e1:
                    self._failed(item, e1)
                else:
                    self._finished([item], results)
            return
        self._finished(batch, results)

    def _failed(self, item: _Pending, e: Exception) -> None:
        if isinstance(e, IntegrityError) and item.inbound.platform_message_id is not None:
            # the platform delivered this message before (unique channel+platform id)
            log.info(
                "duplicate %s message %s dropped",
                item.inbound.channel,
                item.inbound.platform_message_id,
            )
            result = TurnResult([], None, None, [], duplicate=True)
            if not item.future.done():
                item.future.set_result(result)
        elif not item.future.done():
            item.future.set_exception(e)

    def _finished(self, batch: list[_Pending], results: list[TurnResult]) -> None:
        """After the commit: answer the callers, wake the delivery worker once."""
        enqueued = False
        for item, result in zip(batch, results, strict=True):
            if result.language:
                who = (item.inbound.channel, item.inbound.external_id)
                self._recent_language[who] = result.language
                self._recent_language.move_to_end(who)
                if len(self._recent_language) > RECENT_LANGUAGES:
                    self._recent_language.popitem(last=False)
            enqueued = enqueued or bool(result.outbox_ids and not item.deliver_inline)
            if not item.future.done():
                item.future.set_result(result)
        if enqueued and self.on_enqueued:
            self.on_enqueued()

    async def _who(
        self, s: AsyncSession, batch: list[_Pending]
    ) -> dict[tuple[str, str], tuple[Identity, Contact, Conversation | None]]:
        """Who wrote, and their open conversations, in one statement."""
        if len(batch) == 1:
            inbound = batch[0].inbound
            params: dict[str, Any] = {
                "channel": inbound.channel,
                "external_id": inbound.external_id,
            }
            rows = (await s.execute(_WHO, params)).all()
        else:
            params = {
                "channels": sorted({p.inbound.channel for p in batch}),
                "external_ids": [p.inbound.external_id for p in batch],
            }
            rows = (await s.execute(_WHO_MANY, params)).all()
        return {(i.channel, i.external_id): (i, c, conv) for i, c, conv in rows}

    async def _turns(
        self, s: AsyncSession, batch: list[_Pending], *, guarded: bool = False
    ) -> list[TurnResult]:
        found = await self._who(s, batch)
        new = [p for p in batch if (p.inbound.channel, p.inbound.external_id) not in found]
        if new:  # first messages: contacts, identities, conversations a statement each
            made = await create_people(
                s,
                [
                    (
                        p.inbound.channel,
                        p.inbound.external_id,
                        p.inbound.reply_address,
                        p.inbound.display_name,
                    )
                    for p in new
                ],
                min(p.now for p in new),
            )
            for p, (identity, contact, conversation) in zip(new, made, strict=True):
                found[(p.inbound.channel, p.inbound.external_id)] = (
                    identity,
                    contact,
                    conversation,
                )
        started: list[tuple[_Pending, Contact, Identity, Conversation, str, dict[str, Any]]] = []
        rows: list[dict[str, Any]] = []
        for item in batch:
            inbound, now = item.inbound, item.now
            parse = dict(item.parse)  # a failed batch runs again: keep the item as it came
            identity, contact, conv = found[(inbound.channel, inbound.external_id)]
            seen(
                identity,
                contact,
                now=now,
                address=inbound.reply_address,
                display_name=inbound.display_name,
            )
            if item.unhinted and contact.language in self.languages:
                if parse.get("language") != contact.language:
                    # nothing told the parse this person's language: a short text may have
                    # been taken for another one; ask again with the language they wrote in
                    parse = await self.nlu.parse(inbound.text, contact.language)
            language = self._language(parse, inbound, contact)
            parse.setdefault("language", language)
            if contact.language != language:
                contact.language = language
            if _stale(contact.last_activity_at, now):  # minute precision: an UPDATE less a turn
                contact.last_activity_at = now
                contact.updated_at = now
            if not identity.started:
                identity.started = True
            if not identity.reachable:  # the platform refused a send (blocked, left)
                identity.reachable = True  # they wrote to us: they can be reached again
                identity.unreachable_reason = None
            conversation = conv or await self.open_conversation(s, contact, now)
            if conversation.last_channel != inbound.channel:
                conversation.last_channel = inbound.channel
            if _stale(conversation.last_message_at, now):
                conversation.last_message_at = now
                conversation.updated_at = now
            rows.append(
                {
                    "conversation_id": conversation.id,
                    "contact_id": contact.id,
                    "direction": "in",
                    "sender": "user",
                    "channel": inbound.channel,
                    "text": inbound.text,
                    "buttons": None,
                    "payload": inbound.payload,
                    "platform_message_id": inbound.platform_message_id,
                    "client_id": inbound.metadata.get("client_id"),
                    "intent": parse["intent"]["name"],
                    "confidence": float(parse["intent"]["confidence"]),
                    "language": language,
                    "feedback": None,
                    "meta": (
                        {"entities": parse.get("entities", [])} if parse.get("entities") else {}
                    ),
                    "created_at": now,
                }
            )
            started.append((item, contact, identity, conversation, language, parse))

        # the inbound messages in one cached Core statement, not a flush of the unit of work
        # (IntegrityError for a redelivered platform message); the rows join the session
        ids = await dialect.insert_returning_ids(s, writer.MESSAGES, rows)
        delivered = [
            {
                "channel": p.inbound.channel,
                "delivery_id": p.inbound.delivery_id[:255],
                "seen_at": p.now,
            }
            for p in batch
            if p.inbound.delivery_id
        ]
        if delivered:  # the platform's delivery is seen with its turn (a second: IntegrityError)
            await s.execute(insert(SeenDelivery), delivered)
        turns: list[Turn] = []
        for (item, contact, identity, conversation, language, parse), fields, mid in zip(
            started, rows, ids, strict=True
        ):
            message = Message(id=mid, **fields)
            make_transient_to_detached(message)
            s.add(message)
            turns.append(
                Turn(
                    engine=self,
                    session=s,
                    inbound=item.inbound,
                    contact=contact,
                    identity=identity,
                    conversation=conversation,
                    message=message,
                    now=item.now,
                    language=language,
                    parse=parse,
                )
            )
        if guarded:  # one turn alone: everything after its stored message under a savepoint
            return [await self._guarded(s, turns[0], batch[0])]
        for fetch in self._prefetch:
            await fetch(s, turns)
        for turn in turns:
            await self._answer(turn)
        # a policy may have linked the chat to another contact (deep link): use the turn's
        written = await self._write_turns(
            s,
            [
                self._replies(turn, item, turn.contact.id, turn.conversation.id)
                for turn, item in zip(turns, batch, strict=True)
            ],
        )
        return [
            TurnResult(turn.replies, turn.message.id, turn.contact.id, oids, language=turn.language)
            for turn, oids in zip(turns, written, strict=True)
        ]

    async def _answer(self, turn: Turn) -> None:
        for _, name, policy in self._policies:
            if await policy(turn):
                turn.answer_meta.setdefault("policy", name)
                break
        for hook in self._after:
            await hook(turn)

    def _replies(
        self, turn: Turn, item: _Pending, contact_id: int, conversation_id: int
    ) -> list[Reply]:
        """The turn's replies to write, keyed by the inbound message's id."""
        return writer.replies(
            turn.replies,
            f"reply:{turn.message.id}",
            channel=turn.inbound.channel,
            address=turn.inbound.reply_address,
            contact_id=contact_id,
            conversation_id=conversation_id,
            language=turn.language,
            meta=turn.answer_meta,
            sent=item.deliver_inline,
            at=turn.now,
        )

    async def _write_turns(self, s: AsyncSession, turns: list[list[Reply]]) -> list[list[int]]:
        """Each turn's replies in one batch (its keys are new: no look-up for them); each
        turn's new outbox ids, in its messages' order."""
        flat = [r for replies in turns for r in replies]
        if not flat:
            return [[] for _ in turns]
        written = await writer.write(
            s,
            flat,
            now=flat[0].at or self.clock.now(),
            text_limits=self.text_limits,
            check_existing=False,
        )
        out: list[list[int]] = []
        i = 0
        for replies in turns:
            out.append([oid for ids in written[i : i + len(replies)] for oid in ids])
            i += len(replies)
        return out

    async def _guarded(self, s: AsyncSession, turn: Turn, item: _Pending) -> TurnResult:
        """The turn's error boundary. Its inbound message is stored; what the features do
        with it runs under a savepoint. Should any of it fail (a bug in a policy, a hook, a
        reply that cannot be written), the savepoint is rolled back, the error goes to the
        error hooks, and the person gets a short apology in their language: the message is
        kept (the platform was told it arrived) and the person's next turn starts afresh."""
        # plain values: a rolled-back savepoint expires what was changed inside it
        ids = (turn.contact.id, turn.conversation.id, turn.message.id)
        try:
            async with s.begin_nested():
                for fetch in self._prefetch:
                    await fetch(s, [turn])
                await self._answer(turn)
                [oids] = await self._write_turns(
                    s, [self._replies(turn, item, turn.contact.id, turn.conversation.id)]
                )
        except Exception as e:
            self.report_error(turn.inbound, e)
            text = self.responses.text("utter_turn_failed", turn.language)
            turn.replies = [Outbound(text=text, sender="system")]
            turn.answer_meta = {"policy": "error", "error": type(e).__name__}
            [oids] = await self._write_turns(s, [self._replies(turn, item, ids[0], ids[1])])
        return TurnResult(turn.replies, ids[2], ids[0], oids, language=turn.language)

    def report_error(self, inbound: Inbound, error: BaseException) -> None:
        """A turn failed: the error hooks learn of it (the default logs it and counts it for
        ``/metrics``), as python-telegram-bot's error handlers and bolt's ``@app.error``."""
        self.turn_errors[inbound.channel] = self.turn_errors.get(inbound.channel, 0) + 1
        log.error(
            "turn failed: %s message %s from %s",
            inbound.channel,
            inbound.platform_message_id,
            inbound.external_id,
            exc_info=error,
        )
        for hook in self.error_hooks:
            try:
                hook(inbound, error)
            except Exception:
                log.exception("error hook failed")

    def _language(self, parse: dict[str, Any], inbound: Inbound, contact: Contact) -> str:
        if parse.get("language_not_served"):
            return self.default_language  # the answer says which languages are served
        for cand in (parse.get("language"), contact.language, inbound.language):
            if cand in self.languages:
                return str(cand)
            if isinstance(cand, str) and cand[:2] in self.languages:
                return cand[:2]
        return self.default_language

    async def open_conversation(
        self, s: AsyncSession, contact: Contact, now: datetime
    ) -> Conversation:
        conv = (await s.execute(_OPEN_CONVERSATION, {"contact_id": contact.id})).scalar()
        if conv is None:
            conv = Conversation(contact_id=contact.id, created_at=now, updated_at=now, state={})
            s.add(conv)
            await s.flush()
        return conv

    async def write(
        self,
        s: AsyncSession,
        replies: Sequence[Reply],
        *,
        now: datetime | None = None,
        check_existing: bool = True,
    ) -> list[list[int]]:
        """Queue outbound messages in the caller's transaction (see :func:`writer.write`):
        the transcript and the outbox, long texts split for their channel. Returns each
        reply's new outbox ids (none when its key was written before: never twice)."""
        return await writer.write(
            s,
            replies,
            now=now or self.clock.now(),
            text_limits=self.text_limits,
            check_existing=check_existing,
        )


def _stale(stamp: datetime | None, now: datetime, seconds: float = 60) -> bool:
    return stamp is None or (now - stamp).total_seconds() >= seconds


# built once (a statement's construction costs more than its cached compilation)
_LATEST_OPEN = (
    select(func.max(Conversation.id))
    .where(Conversation.contact_id == Contact.id, Conversation.status != "closed")
    .correlate(Contact)
    .scalar_subquery()
)
_WHO = (
    select(Identity, Contact, Conversation)
    .join(Contact, Contact.id == Identity.contact_id)
    .outerjoin(Conversation, Conversation.id == _LATEST_OPEN)
    .where(
        Identity.channel == bindparam("channel"),
        Identity.external_id == bindparam("external_id"),
    )
)
_WHO_MANY = (
    select(Identity, Contact, Conversation)
    .join(Contact, Contact.id == Identity.contact_id)
    .outerjoin(Conversation, Conversation.id == _LATEST_OPEN)
    .where(
        Identity.channel.in_(bindparam("channels", expanding=True)),
        Identity.external_id.in_(bindparam("external_ids", expanding=True)),
    )
)
_OPEN_CONVERSATION = (
    select(Conversation)
    .where(Conversation.contact_id == bindparam("contact_id"), Conversation.status != "closed")
    .order_by(Conversation.id.desc())
    .limit(1)
)
