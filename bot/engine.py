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
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from bot import outbox
from bot.clock import Clock, SystemClock
from bot.contacts import create_people, seen
from bot.nlu.foreign import ENDONYMS
from bot.responses import Responses
from bot.splitting import split_text
from bot.storage.db import Database
from bot.storage.models import Contact, Conversation, Identity, Message, OutboxMessage
from bot.storage.seen import SeenDelivery
from bot.types import Button, Inbound, Outbound

log = logging.getLogger(__name__)
RECENT_LANGUAGES = 10_000  # people whose last language the engine keeps in memory

FALLBACK = "nlu_fallback"
_PAYLOAD = re.compile(r"^/(?P<intent>[\w./-]+)(?P<json>\{.*\})?$", re.DOTALL)


class NLU(Protocol):
    """Any NLU backend: returns Rasa's ``/model/parse`` shape (plus ``language``)."""

    async def parse(self, text: str, language_hint: str | None = None) -> dict[str, Any]: ...


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


@dataclass(slots=True)
class _Pending:
    """A parsed inbound message waiting for its turn."""

    inbound: Inbound
    parse: dict[str, Any]
    unhinted: bool  # nothing told the parse the person's language
    now: datetime
    deliver_inline: bool
    future: asyncio.Future[TurnResult]


@dataclass(slots=True)
class _Write:
    """One conversation's outbound messages, for :meth:`Engine._write`."""

    contact_id: int
    conversation_id: int
    channel: str
    address: str
    messages: list[Outbound]
    keys: list[str]
    now: datetime
    meta: dict[str, Any]
    language: str | None
    sent: bool
    not_before: datetime | None
    check_existing: bool


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to write outside a turn, for :meth:`Engine.write_many`."""

    contact_id: int
    conversation_id: int
    channel: str
    address: str
    message: Outbound
    idempotency_key: str
    language: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    not_before: datetime | None = None


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
    ) -> None:
        self.db = db
        self.nlu = nlu
        self.responses = responses
        self.languages = languages
        self.default_language = default_language
        self.clock = clock or SystemClock()
        self.max_message_bytes = max_message_bytes
        self.on_enqueued = on_enqueued
        self.signals: Any = None  # bot.signals.Signals, set by the runtime
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
            if inbound.channel in ("telegram", "slack") and not identity.reachable:
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
        ids = await _insert_messages(s, rows)
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
        written = await self._write(
            s,
            [
                self._reply_spec(turn, item, turn.contact.id, turn.conversation.id)
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

    def _reply_spec(
        self, turn: Turn, item: _Pending, contact_id: int, conversation_id: int
    ) -> _Write:
        return _Write(
            contact_id=contact_id,
            conversation_id=conversation_id,
            channel=turn.inbound.channel,
            address=turn.inbound.reply_address,
            messages=turn.replies,
            keys=[f"reply:{turn.message.id}:{i}" for i in range(len(turn.replies))],
            now=turn.now,
            meta=turn.answer_meta,
            language=turn.language,
            sent=item.deliver_inline,
            not_before=None,
            check_existing=False,
        )

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
                [oids] = await self._write(
                    s, [self._reply_spec(turn, item, turn.contact.id, turn.conversation.id)]
                )
        except Exception as e:
            self.report_error(turn.inbound, e)
            text = self.responses.text("utter_turn_failed", turn.language)
            turn.replies = [Outbound(text=text, sender="system")]
            turn.answer_meta = {"policy": "error", "error": type(e).__name__}
            [oids] = await self._write(s, [self._reply_spec(turn, item, ids[0], ids[1])])
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

    async def write_reply(
        self,
        s: AsyncSession,
        *,
        contact: Contact,
        conversation: Conversation,
        channel: str,
        address: str,
        message: Outbound,
        idempotency_key: str,
        now: datetime,
        meta: dict[str, Any] | None = None,
        language: str | None = None,
        sent: bool = False,
        not_before: datetime | None = None,
    ) -> int | None:
        """Write one outbound message to the transcript and the outbox (caller's transaction).

        Returns the outbox row id, or ``None`` when ``idempotency_key`` was written before (the
        message is then not written again: never twice).
        """
        ids = await self.write_replies(
            s,
            contact=contact,
            conversation=conversation,
            channel=channel,
            address=address,
            messages=[message],
            keys=[idempotency_key],
            now=now,
            meta=meta,
            language=language,
            sent=sent,
            not_before=not_before,
        )
        return ids[0] if ids else None

    async def write_replies(
        self,
        s: AsyncSession,
        *,
        contact: Contact,
        conversation: Conversation,
        channel: str,
        address: str,
        messages: list[Outbound],
        now: datetime,
        key_prefix: str | None = None,
        keys: list[str] | None = None,
        meta: dict[str, Any] | None = None,
        language: str | None = None,
        sent: bool = False,
        not_before: datetime | None = None,
    ) -> list[int]:
        """Write several outbound messages in two statements (transcript, outbox)."""
        if not messages:
            return []
        keys = keys or [f"{key_prefix}:{i}" for i in range(len(messages))]
        if len(keys) != len(messages):
            raise ValueError("one idempotency key per message")
        spec = _Write(
            contact_id=contact.id,
            conversation_id=conversation.id,
            channel=channel,
            address=address,
            messages=messages,
            keys=keys,
            now=now,
            meta=meta or {},
            language=language,
            sent=sent,
            not_before=not_before,
            # keys of the caller's: some may have been written before
            check_existing=key_prefix is None,
        )
        return (await self._write(s, [spec]))[0]

    async def _write(self, s: AsyncSession, specs: list[_Write]) -> list[list[int]]:
        """Outbound messages of several conversations: transcript rows in one statement,
        outbox rows in another. Returns each spec's new outbox ids; a key written before is
        skipped (never twice)."""
        parts: list[tuple[_Write, str, Outbound]] = []
        for sp in specs:
            messages, keys = sp.messages, sp.keys
            limit = self.text_limits.get(sp.channel)
            if limit and any(len(m.text) > limit for m in messages):
                messages, keys = _split_long(messages, keys, limit)
            parts.extend((sp, k, m) for k, m in zip(keys, messages, strict=True))
        checked = [k for sp, k, _ in parts if sp.check_existing]
        if checked:
            existing = set(
                (
                    await s.execute(
                        select(OutboxMessage.idempotency_key).where(
                            OutboxMessage.idempotency_key.in_(checked)
                        )
                    )
                ).scalars()
            )
            parts = [p for p in parts if p[1] not in existing]
        if not parts:
            return [[] for _ in specs]
        rows = [
            _reply_row(
                sp.conversation_id, sp.contact_id, sp.channel, sp.language, m, sp.meta, sp.now
            )
            for sp, _, m in parts
        ]
        # Core statements, compiled once and cached (ORM bulk inserts compile every time)
        msg_ids = await _insert_messages(s, rows)
        ob_rows = [
            _outbox_row(
                key,
                sp.channel,
                sp.address,
                sp.contact_id,
                mid,
                m,
                sent=sp.sent,
                due=sp.not_before or sp.now,
                now=sp.now,
            )
            for (sp, key, m), mid in zip(parts, msg_ids, strict=True)
        ]
        pg = (s.bind.dialect.name if s.bind else "sqlite") == "postgresql"
        if len(ob_rows) == 1:
            stmt = _INSERT_OUTBOX_PG if pg else _INSERT_OUTBOX_SQLITE
            got = (await s.execute(stmt, ob_rows[0])).all()
        else:  # one statement, the keys written returned (a conflicting key returns nothing)
            stmt = _INSERT_MANY_OUTBOX_PG if pg else _INSERT_MANY_OUTBOX_SQLITE
            got = (await s.execute(stmt, ob_rows)).all()
        written = {key: oid for oid, key, _ in got}
        if len(written) < len(ob_rows):
            # a concurrent writer queued some of these keys first: drop our transcript copies
            dropped = [
                mid
                for r, mid in zip(ob_rows, msg_ids, strict=True)
                if r["idempotency_key"] not in written
            ]
            await s.execute(delete(Message).where(Message.id.in_(dropped)))
        out: dict[int, list[int]] = {id(sp): [] for sp in specs}
        for sp, key, _ in parts:  # in the messages' order
            if key in written:
                out[id(sp)].append(written[key])
        return [out[id(sp)] for sp in specs]

    async def write_many(
        self, s: AsyncSession, replies: list[Reply], *, now: datetime
    ) -> dict[str, int]:
        """:meth:`write_reply` for many people at once (the caller's transaction), in a few
        statements whatever their number: scheduled prompts, broadcasts.

        Returns ``{idempotency_key: outbox id}`` of the replies written now; a key written
        before is left out and nothing is written for it (never twice).
        """
        parts: list[tuple[Reply, str, Outbound]] = []
        for r in replies:
            limit = self.text_limits.get(r.channel)
            if limit and len(r.message.text) > limit:
                ms, ks = _split_long([r.message], [r.idempotency_key], limit)
                parts.extend((r, k, m) for k, m in zip(ks, ms, strict=True))
            else:
                parts.append((r, r.idempotency_key, r.message))
        if not parts:
            return {}
        existing = set(
            (
                await s.execute(
                    select(OutboxMessage.idempotency_key).where(
                        OutboxMessage.idempotency_key.in_([k for _, k, _ in parts])
                    )
                )
            ).scalars()
        )
        todo = [p for p in parts if p[1] not in existing]
        if not todo:
            return {}
        rows = [
            _reply_row(r.conversation_id, r.contact_id, r.channel, r.language, m, r.meta, now)
            for r, _, m in todo
        ]
        pg = (s.bind.dialect.name if s.bind else "sqlite") == "postgresql"
        if pg:  # ids first: plain INSERTs pipelined, no many-parameter statements to plan
            msg_ids = await _next_ids(s, "messages", len(rows))
            for row, mid in zip(rows, msg_ids, strict=True):
                row["id"] = mid
            await s.execute(insert(_MESSAGES), rows)
        else:
            msg_ids = await _insert_messages(s, rows)
        ob_rows = [
            _outbox_row(
                key,
                r.channel,
                r.address,
                r.contact_id,
                mid,
                m,
                sent=False,
                due=r.not_before or now,
                now=now,
            )
            for (r, key, m), mid in zip(todo, msg_ids, strict=True)
        ]
        written: dict[str, tuple[int, int | None]] = {}
        if pg:
            ob_ids = await _next_ids(s, "outbox", len(ob_rows))
            for ob_row, oid in zip(ob_rows, ob_ids, strict=True):
                ob_row["id"] = oid
            await s.execute(_UPSERT_OUTBOX_PG, ob_rows)  # a key queued meanwhile: skipped
            for oid, key, omid in await s.execute(
                select(
                    OutboxMessage.id, OutboxMessage.idempotency_key, OutboxMessage.message_id
                ).where(OutboxMessage.id.in_(ob_ids))
            ):
                written[key] = (oid, omid)
        else:
            written = {
                k: (oid, mid)
                for oid, k, mid in (await s.execute(_INSERT_MANY_OUTBOX_SQLITE, ob_rows)).all()
            }
        if len(written) < len(ob_rows):  # a concurrent writer queued some keys first
            kept = {mid for _, mid in written.values()}
            await s.execute(delete(Message).where(Message.id.in_(set(msg_ids) - kept)))
        return {
            r.idempotency_key: written[r.idempotency_key][0]
            for r in replies
            if r.idempotency_key in written
        }


_MESSAGES = cast(Table, Message.__table__)
_INSERT_MESSAGE = insert(_MESSAGES).returning(_MESSAGES.c.id)
_INSERT_MESSAGES = insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True)
_OUTBOX = cast(Table, OutboxMessage.__table__)
_INSERT_OUTBOX_PG = (
    pg_insert(_OUTBOX)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_OUTBOX.c.id, _OUTBOX.c.idempotency_key, _OUTBOX.c.message_id)
)
_INSERT_OUTBOX_SQLITE = (
    sqlite_insert(_OUTBOX)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_OUTBOX.c.id, _OUTBOX.c.idempotency_key, _OUTBOX.c.message_id)
)
_INSERT_MANY_OUTBOX_PG = _INSERT_OUTBOX_PG

_UPSERT_OUTBOX_PG = pg_insert(_OUTBOX).on_conflict_do_nothing(index_elements=["idempotency_key"])
_INSERT_MANY_OUTBOX_SQLITE = (
    sqlite_insert(_OUTBOX)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_OUTBOX.c.id, _OUTBOX.c.idempotency_key, _OUTBOX.c.message_id)
)


def _reply_row(
    conversation_id: int,
    contact_id: int,
    channel: str,
    language: str | None,
    m: Outbound,
    meta: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The transcript row of an outbound message (the columns of :data:`_INSERT_MESSAGE`)."""
    merged = {**meta, **m.metadata}
    return {
        "conversation_id": conversation_id,
        "contact_id": contact_id,
        "direction": "out",
        "sender": m.sender,
        "channel": channel,
        "text": m.text,
        "buttons": [b.to_dict() for b in m.buttons] or None,
        "intent": merged.get("intent"),
        "confidence": merged.get("confidence"),
        "language": language,
        "meta": merged,
        "created_at": now,
        "feedback": None,
        "payload": None,
        "platform_message_id": None,
        "client_id": None,
    }


def _outbox_row(
    key: str,
    channel: str,
    address: str,
    contact_id: int,
    message_id: int,
    m: Outbound,
    *,
    sent: bool,
    due: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The outbox row of a transcript message: pending from ``due``, or already sent (the
    caller delivers it itself)."""
    return {
        "idempotency_key": key,
        "channel": channel,
        "address": address,
        "contact_id": contact_id,
        "message_id": message_id,
        "purpose": str(m.purpose),
        "payload": Outbound(
            text=m.text,
            buttons=m.buttons,
            purpose=m.purpose,
            sender=m.sender,
            thread_id=m.thread_id,
            metadata={**m.metadata, "message_id": message_id},
        ).to_dict(),
        "status": outbox.SENT if sent else outbox.PENDING,
        "attempts": 1 if sent else 0,
        "next_attempt_at": due,
        "created_at": now,
        "sent_at": now if sent else None,
    }


_MAX_MESSAGE_ID = select(func.max(_MESSAGES.c.id))


async def _insert_messages(s: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """Insert transcript rows in one statement; their ids in the rows' order."""
    if len(rows) == 1:
        return [(await s.execute(_INSERT_MESSAGE, rows[0])).scalar_one()]
    if s.bind is not None and s.bind.dialect.name == "sqlite":
        # SQLAlchemy sends an ordered RETURNING to SQLite a row at a time. A transaction here
        # holds the write lock from its BEGIN IMMEDIATE, so the next ids are known: SQLite's
        # own choice for a plain integer key, the largest one plus one
        top = (await s.execute(_MAX_MESSAGE_ID)).scalar() or 0
        ids = list(range(top + 1, top + 1 + len(rows)))
        await s.execute(insert(_MESSAGES), [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
        return ids
    return list((await s.execute(_INSERT_MESSAGES, rows)).scalars())


async def _next_ids(s: AsyncSession, table: str, n: int) -> list[int]:
    """``n`` ids from the table's sequence (PostgreSQL), in one statement."""
    seq = func.pg_get_serial_sequence(table, "id")
    q = select(func.nextval(seq)).select_from(func.generate_series(1, n))
    return [int(i) for i in (await s.execute(q)).scalars()]


def _split_long(
    messages: list[Outbound], keys: list[str], limit: int
) -> tuple[list[Outbound], list[str]]:
    """Long texts become several messages (buttons stay on the last part)."""
    out_m: list[Outbound] = []
    out_k: list[str] = []
    for m, k in zip(messages, keys, strict=True):
        if len(m.text) <= limit:
            out_m.append(m)
            out_k.append(k)
            continue
        parts = split_text(m.text, limit)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            out_m.append(
                Outbound(
                    text=part,
                    buttons=m.buttons if last else (),
                    purpose=m.purpose,
                    sender=m.sender,
                    thread_id=m.thread_id,
                    metadata={**m.metadata, "part": f"{i + 1}/{len(parts)}"},
                )
            )
            out_k.append(k if i == 0 else f"{k}.p{i + 1}")
    return out_m, out_k


def _stale(stamp: datetime | None, now: datetime, seconds: float = 60) -> bool:
    return stamp is None or (now - stamp).total_seconds() >= seconds


# --- built-in policies ------------------------------------------------------------------


async def feedback_policy(turn: Turn) -> bool:
    """ "Was this helpful?" answers: stored on the latest answer of that topic."""
    if turn.intent not in ("feedback_helpful", "feedback_not_helpful"):
        return False
    topic = turn.entities.get("topic")
    value = "helpful" if turn.intent == "feedback_helpful" else "not_helpful"
    if topic:
        answer = (
            await turn.session.execute(
                select(Message)
                .where(
                    Message.contact_id == turn.contact.id,
                    Message.direction == "out",
                    Message.intent == str(topic),
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if answer is not None:
            answer.feedback = value
    if value == "helpful":
        turn.say("utter_feedback_thanks")
    else:
        turn.replies.append(
            Outbound(
                text=turn.text("utter_feedback_sorry"),
                buttons=(
                    Button(turn.text("utter_button_human"), "/request_human"),
                    Button(turn.text("utter_button_rephrase"), "/rephrase"),
                ),
            )
        )
    turn.answer_meta.update(intent=turn.intent, confidence=1.0, feedback=value, topic=topic)
    return True


STOP_WORDS = {"stop", "/stop", "stopp", "unsubscribe", "leiratkozom", "avsluta", "wypisz"}


COMMAND_INTENTS = {"opt_out", "feedback_helpful", "feedback_not_helpful", "csat"}
"""Intents that are commands, confirmed whoever has the conversation (a person or the bot)."""


def is_opt_out(turn: Turn) -> bool:
    said = turn.inbound.text.strip().casefold().rstrip("!.")
    return turn.intent == "opt_out" or said in STOP_WORDS


def is_command(turn: Turn) -> bool:
    """ "stop" and the buttons that answer the bot (feedback, CSAT)."""
    return turn.intent in COMMAND_INTENTS or is_opt_out(turn)


async def opt_out_policy(turn: Turn) -> bool:
    """ "stop" (any shipped language, ``/stop``, or the ``opt_out`` intent): no more marketing,
    at once and on every channel. Service messages (answers, order updates) still arrive."""
    if not is_opt_out(turn):
        return False
    c = turn.contact
    if not c.marketing_opt_out:
        c.marketing_opt_out = True
        c.marketing_opt_out_at = turn.now
        signals = getattr(turn.engine, "signals", None)
        if signals is not None:
            await signals.opted_out.send(
                session=turn.session, contact=c, channel=turn.inbound.channel, now=turn.now
            )
    turn.say("utter_opted_out")
    turn.answer_meta.update(intent="opt_out", confidence=turn.confidence)
    return True


async def faq_policy(turn: Turn) -> bool:
    """Answer from the responses: ``faq/<topic>`` -> ``utter_faq/<topic>``, ``x`` -> ``utter_x``;
    unsure -> clarify with the nearest topics; unsure twice -> offer a person."""
    intent, conf = turn.intent, turn.confidence
    conv = turn.conversation
    turn.answer_meta.update(intent=intent, confidence=conf)
    if intent == "rephrase":
        turn.say("utter_rephrase")
        return True
    if intent == "clarify_none":  # "None of these": a person (or an e-mail), not a dead end
        conv.unsure_streak = 0
        turn.replies.append(turn.engine.offer_person(turn))
        turn.answer_meta["fallback"] = "offer_human"
        return True
    if turn.parse.get("language_not_served"):
        names = ", ".join(ENDONYMS.get(lang, lang) for lang in turn.engine.languages)
        turn.say("utter_language_not_served", languages=names)
        turn.answer_meta["fallback"] = "language_not_served"
        return True
    if intent != FALLBACK:
        name = f"utter_{intent}"
        if turn.engine.responses.has(name, turn.language):
            conv.unsure_streak = 0
            out = turn.say(name)
            if out is not None and intent.startswith("faq/"):
                turn.replies[-1] = Outbound(
                    text=out.text,
                    buttons=out.buttons,
                    metadata={"ask_feedback": True},
                )
            return True
    # unsure, or an intent with no response of its own
    conv.unsure_streak = (conv.unsure_streak or 0) + 1
    if conv.unsure_streak >= 2:
        conv.unsure_streak = 0
        turn.replies.append(turn.engine.offer_person(turn))
        turn.answer_meta["fallback"] = "offer_human"
        return True
    # staff can take over (the handoff feature is set up): a person is one of the choices
    person = "handoff" in turn.engine.policy_names
    if turn.parse.get("out_of_scope"):
        # far from every topic: say so honestly rather than guess three topics
        buttons = [Button(turn.text("utter_button_human"), "/request_human")] if person else []
        turn.replies.append(Outbound(text=turn.text("utter_out_of_scope"), buttons=tuple(buttons)))
        turn.answer_meta["fallback"] = "out_of_scope"
        return True
    candidates = [
        r["name"]
        for r in turn.parse.get("intent_ranking", [])
        if r["name"] != FALLBACK
        and turn.engine.responses.has(f"utter_{r['name']}", turn.language)
        # topics, not small talk: a FAQ answer or a topic the shop gave a button title
        and (
            r["name"].startswith("faq/")
            or turn.engine.responses.has(f"utter_ask_{r['name']}", turn.language)
        )
    ][:3]
    if candidates:
        buttons = [Button(topic_title(turn, c), f"/{c}") for c in candidates]
        if person:
            buttons.append(Button(turn.text("utter_button_human"), "/request_human"))
        buttons.append(Button(turn.text("utter_clarify_none"), "/clarify_none"))
        turn.replies.append(Outbound(text=turn.text("utter_clarify"), buttons=tuple(buttons)))
        turn.answer_meta["fallback"] = "clarify"
    else:
        turn.say("utter_default")
        turn.answer_meta["fallback"] = "default"
    return True


def offer_person(turn: Turn) -> Outbound:
    """The offer of a person from the team (the handoff feature knows when one is there)."""
    return Outbound(
        text=turn.text("utter_offer_human"),
        buttons=(
            Button(turn.text("utter_button_human"), '/request_human{"reason": "unsure"}'),
            Button(turn.text("utter_button_rephrase"), "/rephrase"),
        ),
    )


def topic_title(turn: Turn, intent: str) -> str:
    """A button title for a topic: ``utter_ask_<intent>`` if the shop wrote one."""
    name = f"utter_ask_{intent}"
    if turn.engine.responses.has(name, turn.language):
        return turn.text(name)
    return intent.split("/")[-1].replace("_", " ").capitalize()


async def feedback_buttons_hook(turn: Turn) -> None:
    """After a FAQ answer, ask "Was this helpful?" with Yes/No buttons."""
    for r in list(turn.replies):
        if r.metadata.get("ask_feedback"):
            topic = json.dumps({"topic": turn.intent})
            turn.replies.append(
                Outbound(
                    text=turn.text("utter_ask_feedback"),
                    buttons=(
                        Button(turn.text("utter_button_yes"), f"/feedback_helpful{topic}"),
                        Button(turn.text("utter_button_no"), f"/feedback_not_helpful{topic}"),
                    ),
                    metadata={"intent": "feedback_question", "confidence": None},
                )
            )
            return


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
