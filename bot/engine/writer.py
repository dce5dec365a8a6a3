"""The one way to queue outbound messages: :func:`write` a batch of :class:`Reply` (a single
message is a batch of one), in the caller's transaction.

Each reply becomes a transcript row (when it belongs to a conversation) and an outbox row
under its idempotency key, whatever their number in a few statements: the transcript rows in
one, the outbox rows in another. A key queued before is skipped and nothing is written for it
(never twice); a text longer than its channel takes becomes several messages (keys
``<key>``, ``<key>.p2``, ...; the buttons stay on the last part).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbox import PENDING, SENT
from bot.splitting import split_text
from bot.storage import dialect
from bot.storage.models import Message, OutboxMessage
from bot.types import Outbound

MESSAGES = cast(Table, Message.__table__)
OUTBOX = cast(Table, OutboxMessage.__table__)
_KEY = ("idempotency_key",)
_RETURNED = ("id", "idempotency_key")


@dataclass(frozen=True, slots=True)
class Reply:
    """One outbound message to queue.

    Without ``conversation_id`` it goes to the outbox only (a post in a staff or company
    channel, which is nobody's conversation). ``sent``: the caller delivers it itself (the
    Rasa REST channel answers in the HTTP response); it is written down as sent. ``at``: when
    it was written, if not the batch's ``now`` (turns of one batch each keep their own)."""

    channel: str
    address: str
    message: Outbound
    idempotency_key: str
    contact_id: int | None = None
    conversation_id: int | None = None
    language: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    not_before: datetime | None = None
    sent: bool = False
    at: datetime | None = None


def replies(messages: Sequence[Outbound], key: str, *, first: int = 0, **same: Any) -> list[Reply]:
    """One reply per message, keyed ``<key>:<n>`` from ``first`` on; ``same``: the other
    :class:`Reply` fields, alike for all."""
    return [
        Reply(message=m, idempotency_key=f"{key}:{first + i}", **same)
        for i, m in enumerate(messages)
    ]


async def write(
    s: AsyncSession,
    replies: Sequence[Reply],
    *,
    now: datetime,
    text_limits: Mapping[str, int] | None = None,
    check_existing: bool = True,
) -> list[list[int]]:
    """Queue ``replies``; returns, for each reply, the outbox ids written now (several when
    its text was split, none when its key was written before).

    ``check_existing=False``: the caller knows its keys are new (a turn's reply keys carry
    the new message's id) and saves the look-up; a key queued meanwhile is still skipped."""
    parts = _parts(replies, text_limits or {})
    if check_existing and parts:
        existing = set(
            (
                await s.execute(
                    select(OutboxMessage.idempotency_key).where(
                        OutboxMessage.idempotency_key.in_([k for _, _, k, _ in parts])
                    )
                )
            ).scalars()
        )
        parts = [p for p in parts if p[2] not in existing]
    if not parts:
        return [[] for _ in replies]
    talk = [p for p in parts if p[1].conversation_id is not None]
    message_ids: dict[str, int] = {}
    if talk:
        rows = [transcript_row(r, m, r.at or now) for _, r, _, m in talk]
        ids = await dialect.insert_returning_ids(s, MESSAGES, rows)
        message_ids = {k: mid for (_, _, k, _), mid in zip(talk, ids, strict=True)}
    queued = [outbox_row(r, k, m, message_ids.get(k), r.at or now) for _, r, k, m in parts]
    written = await _insert_outbox(s, queued)
    if len(written) < len(queued):
        # a concurrent writer queued some of these keys first: drop our transcript copies
        dropped = [mid for k, mid in message_ids.items() if k not in written]
        if dropped:
            await s.execute(delete(Message).where(Message.id.in_(dropped)))
    out: list[list[int]] = [[] for _ in replies]
    for i, _, key, _ in parts:  # in the messages' order
        if key in written:
            out[i].append(written[key])
    return out


def _parts(
    replies: Sequence[Reply], limits: Mapping[str, int]
) -> list[tuple[int, Reply, str, Outbound]]:
    """(reply's index, reply, key, message) for each message to write, long texts split."""
    parts: list[tuple[int, Reply, str, Outbound]] = []
    for i, r in enumerate(replies):
        limit = limits.get(r.channel)
        if limit and len(r.message.text) > limit:
            for n, m in enumerate(split_long(r.message, limit)):
                parts.append(
                    (i, r, r.idempotency_key if n == 0 else f"{r.idempotency_key}.p{n + 1}", m)
                )
        else:
            parts.append((i, r, r.idempotency_key, r.message))
    return parts


async def _insert_outbox(s: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert outbox rows, skipping keys there already; ``{key: id}`` of those written."""
    pg = dialect.is_postgres(s)
    if pg and len(rows) >= dialect.PREFETCH_IDS_FROM:
        # ids first: plain INSERTs pipelined, no many-parameter statement to plan
        ids = await dialect.next_ids(s, OUTBOX.name, len(rows))
        for row, oid in zip(rows, ids, strict=True):
            row["id"] = oid
        await s.execute(dialect.insert_ignoring(OUTBOX, _KEY, (), pg), rows)
        got = await s.execute(
            select(OUTBOX.c.id, OUTBOX.c.idempotency_key).where(OUTBOX.c.id.in_(ids))
        )
        return {key: oid for oid, key in got}
    stmt = dialect.insert_ignoring(OUTBOX, _KEY, _RETURNED, pg)
    got = await s.execute(stmt, rows[0] if len(rows) == 1 else rows)
    return {key: oid for oid, key in got}


def transcript_row(r: Reply, m: Outbound, now: datetime) -> dict[str, Any]:
    """The transcript row of an outbound message."""
    merged = {**r.meta, **m.metadata}
    return {
        "conversation_id": r.conversation_id,
        "contact_id": r.contact_id,
        "direction": "out",
        "sender": m.sender,
        "channel": r.channel,
        "text": m.text,
        "buttons": [b.to_dict() for b in m.buttons] or None,
        "intent": merged.get("intent"),
        "confidence": merged.get("confidence"),
        "language": r.language,
        "meta": merged,
        "created_at": now,
        "feedback": None,
        "payload": None,
        "platform_message_id": None,
        "client_id": None,
    }


def outbox_row(
    r: Reply, key: str, m: Outbound, message_id: int | None, now: datetime
) -> dict[str, Any]:
    """The outbox row of a message: pending from ``not_before`` (or now), or already sent
    (the caller delivers it itself). Its payload carries the transcript message's id."""
    payload = m if message_id is None else _with_message_id(m, message_id)
    return {
        "idempotency_key": key,
        "channel": r.channel,
        "address": r.address,
        "contact_id": r.contact_id,
        "message_id": message_id,
        "purpose": str(m.purpose),
        "payload": payload.to_dict(),
        "status": SENT if r.sent else PENDING,
        "attempts": 1 if r.sent else 0,
        "next_attempt_at": r.not_before or now,
        "created_at": now,
        "sent_at": now if r.sent else None,
    }


def _with_message_id(m: Outbound, message_id: int) -> Outbound:
    return Outbound(
        text=m.text,
        buttons=m.buttons,
        purpose=m.purpose,
        sender=m.sender,
        thread_id=m.thread_id,
        metadata={**m.metadata, "message_id": message_id},
    )


def split_long(m: Outbound, limit: int) -> list[Outbound]:
    """A long text as several messages (the buttons stay on the last part)."""
    parts = split_text(m.text, limit)
    return [
        Outbound(
            text=part,
            buttons=m.buttons if i == len(parts) - 1 else (),
            purpose=m.purpose,
            sender=m.sender,
            thread_id=m.thread_id,
            metadata={**m.metadata, "part": f"{i + 1}/{len(parts)}"},
        )
        for i, part in enumerate(parts)
    ]
