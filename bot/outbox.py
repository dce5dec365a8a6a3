"""The durable outbox: every outbound message is a row before any platform call.

"Never twice, never lost":
- :func:`bot.engine.writer.write` writes the row in the caller's transaction under a unique
  idempotency key, so the same reply or prompt cannot be queued twice;
- the :class:`DeliveryWorker` claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
  single-writer lock on SQLite), leases them, sends, and records the platform's message id at
  once; a crashed worker's lease runs out and another worker resumes the row;
- a send is "in doubt" from the platform call until its "sent" record commits: a crash then
  cannot tell whether the platform took it in, and the row is sent again. So each channel has
  at most ``in_doubt`` (default 1) sends in doubt at a time per worker, the "sent" record is
  retried in memory on a database error (tenacity) and never given up by this process, a row
  is sent only while its lease outlasts the send timeout, and a row this process sent but
  could not record is recorded, never sent again, when it comes back;
- transient failures retry with exponential backoff and jitter, ``retry_after`` is honoured,
  permanent failures and too many attempts dead-letter the row with the reason;
- messages to one address leave in the order they were written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import BindParameter, Table, bindparam, func, select, text, update
from sqlalchemy.orm import aliased
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from bot.clock import Clock, SystemClock
from bot.ratelimit import RateLimiter
from bot.storage.db import Database
from bot.storage.models import Identity, OutboxMessage
from bot.types import (
    Delivery,
    DeliveryError,
    Outbound,
    PermanentError,
    RetryAfter,
    Sender,
    SendResult,
    Unreachable,
)

log = logging.getLogger(__name__)
# pg_advisory_xact_lock key of the outbox claim (any constant bigint of our own)
CLAIM_LOCK = 0x436F6E63_6F757462  # 'Concoutb'

PENDING, SENDING, SENT, DEAD, CANCELLED = "pending", "sending", "sent", "dead", "cancelled"


class DeliveryWorker:
    """Sends due outbox rows through the channel senders. Several may run at once."""

    def __init__(
        self,
        db: Database,
        senders: Mapping[str, Sender],
        *,
        clock: Clock | None = None,
        limiters: Mapping[str, RateLimiter] | None = None,
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        batch_size: int = 50,
        lease_seconds: float = 60.0,
        poll_interval: float = 0.5,
        concurrency: int = 32,
        in_doubt: int = 1,
        send_timeout: float | None = None,
    ) -> None:
        self.db = db
        self.senders = senders
        self.clock = clock or SystemClock()
        # the caller's mapping itself (not a copy): the runtime adds channels' limiters to it
        # after the worker is built, and an empty mapping is falsy
        self.limiters = limiters if limiters is not None else {}
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_interval = poll_interval
        # hooks: rewrite a delivery just before it is sent (e.g. resolve a thread id), and
        # learn of outcomes (e.g. remember a posted message's id, report a dead letter)
        self.before_send: list[Callable[[Delivery], Awaitable[Delivery]]] = []
        self.after_sent: list[Callable[[Delivery, SendResult], Awaitable[None]]] = []
        self.after_dead: list[Callable[[Delivery, str], Awaitable[None]]] = []
        self._wake = asyncio.Event()
        self._sem = asyncio.Semaphore(concurrency)
        # sends in doubt at a time per channel: from the platform call until "sent" is written
        self.in_doubt = in_doubt
        self._slots: dict[str, asyncio.Semaphore] = {}
        # a row is sent only while this much of its lease is left (a send that times out
        # still ends, and is written down, before another worker may take the row)
        self.lease_margin = timedelta(seconds=(send_timeout + 1.0) if send_timeout else 0.0)
        # rows sent whose "sent" record failed even after retrying: platform message id by
        # row id (such a row is recorded when it comes back, never sent again)
        self.unrecorded: dict[int, str | None] = {}
        self._stopping = False
        # sent rows waiting to be written down, and the task writing them
        self._sent: list[tuple[dict[str, Any], asyncio.Future[None], datetime | None]] = []
        self._claim_sql: tuple[Any, Any] | None = None  # built once (construction costs)
        self._recorder: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Tell the worker new rows are due (saves waiting for the next poll)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self._stopping:
                try:
                    n = await self.run_once()
                except Exception:
                    log.exception("delivery round failed")
                    n = 0
                if n == 0 and not self._stopping:
                    with contextlib.suppress(TimeoutError):  # woken, or the next poll
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                    self._wake.clear()
        finally:
            # stopped or cancelled: what went out is written down before the worker ends
            if self._recorder is not None and not self._recorder.done():
                await asyncio.shield(self._recorder)

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver it; returns how many were claimed."""
        rows = await self._claim()
        if not rows:
            return 0
        groups: dict[tuple[str, str], list[OutboxMessage]] = defaultdict(list)
        again = [r for r in rows if r.id in self.unrecorded]
        for r in rows:
            if r.id not in self.unrecorded:
                groups[(r.channel, r.address)].append(r)
        for r in again:  # sent before, its record failed: written down now, not sent again
            with contextlib.suppress(Exception):
                await self._record_sent(r.id, self.unrecorded[r.id], r.locked_until)
        await asyncio.gather(*(self._deliver_group(g) for g in groups.values()))
        return len(rows)

    async def drain(self, max_rounds: int = 1000) -> None:
        """Deliver until nothing is due now (tests, CLI)."""
        for _ in range(max_rounds):
            if await self.run_once() == 0:
                return

    # --- claiming -----------------------------------------------------------------------
    async def _claim(self) -> list[OutboxMessage]:
        now = self.clock.now()
        if self._claim_sql is None:
            self._claim_sql = _claim_statements(self.db.is_postgres)
        due, take = self._claim_sql
        async with self.db.session() as s:
            if self.db.is_postgres:
                # claims take turns (sends do not): a claim sees what the one before it took.
                # Without this, a worker could take an address's next row while another
                # worker's uncommitted claim holds the row before it, and send out of order.
                await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIM_LOCK})
            params = {"now": now, "channels": list(self.senders), "limit": self.batch_size}
            ids = list((await s.execute(due, params)).scalars())
            if not ids:
                return []
            # the status condition again: a row another worker claimed meanwhile is not ours
            res = await s.execute(take, {"now": now, "ids": ids, "until": now + self.lease})
            rows = sorted(res.scalars(), key=lambda r: r.id)
        return rows

    # --- sending ------------------------------------------------------------------------
    async def _deliver_group(self, rows: list[OutboxMessage]) -> None:
        for i, row in enumerate(rows):
            if self._stopping:  # shutting down: finish what is on the wire, hand back the rest
                await self._release(rows[i:])
                return
            if await self._deliver(row) != SENT:
                # keep order: the rest of this address waits for the failed one
                await self._release(rows[i + 1 :])
                return

    async def _release(self, rows: list[OutboxMessage]) -> None:
        if not rows:
            return
        async with self.db.session() as s:
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([r.id for r in rows]), OutboxMessage.status == SENDING)
                .values(
                    status=PENDING,
                    locked_until=None,
                    attempts=OutboxMessage.attempts - 1,
                )
                .execution_options(synchronize_session=False)
            )

    async def _deliver(self, row: OutboxMessage) -> str:
        """Send one row; returns its status now (``SENDING``: sent, not written down yet)."""
        sender = self.senders[row.channel]
        delivery = Delivery(
            outbox_id=row.id,
            channel=row.channel,
            address=row.address,
            message=Outbound.from_dict(row.payload),
            contact_id=row.contact_id,
            attempt=row.attempts,
            idempotency_key=row.idempotency_key,
        )
        limiter = self.limiters.get(row.channel)
        if limiter:  # a chat's own pace is waited for without holding the channel's slot
            await limiter.ready(row.address)
        async with self._sem, self._slot(row.channel):
            if row.locked_until is not None and row.locked_until - self.clock.now() < (
                self.lease_margin
            ):
                # too little of the lease is left to send and write it down before another
                # worker may take the row: handed back, claimed afresh
                await self._release([row])
                return PENDING
            try:
                for hook in self.before_send:
                    delivery = await hook(delivery)
            except DeliveryError as e:
                return await self._retry(row, e.reason)
            if limiter:
                await limiter.acquire(row.address)
            try:
                result = await sender.send(delivery)
            except RetryAfter as e:
                if limiter:  # the whole channel waits, not only this message
                    limiter.pause(e.seconds)
                return await self._retry(row, e.reason, delay=e.seconds, count_attempt=False)
            except Unreachable as e:
                await self._mark_unreachable(row, e.reason)
                return await self._dead(row, f"unreachable: {e.reason}", delivery)
            except PermanentError as e:
                return await self._dead(row, e.reason, delivery)
            except DeliveryError as e:
                return await self._retry(row, e.reason, delivery=delivery)
            except Exception as e:  # a bug or an unexpected library error: retry, then dead
                log.exception("sender %s failed", row.channel)
                return await self._retry(row, f"{type(e).__name__}: {e}", delivery=delivery)
            # still in doubt until written down: the slot is held until then
            try:
                await self._record_sent(row.id, result.platform_message_id, row.locked_until)
            except Exception:
                return SENDING
        await _call_hooks(self.after_sent, "after-sent", row.id, delivery, result)
        return SENT

    def _slot(self, channel: str) -> asyncio.Semaphore:
        slot = self._slots.get(channel)
        if slot is None:
            # a sender whose repeats do no harm (web frames carry their message id, which
            # the widget shows once) says how many of its sends may be in doubt at once
            limit = getattr(self.senders.get(channel), "in_doubt", None) or self.in_doubt
            slot = self._slots[channel] = asyncio.Semaphore(limit)
        return slot

    async def _record_sent(
        self, row_id: int, platform_message_id: str | None, leased_until: datetime | None
    ) -> None:
        """Write down at once that a row went out (and the platform's id for it). Rows sent
        meanwhile, to other addresses, share the transaction: one commit for all of them
        instead of one each (group commit); the address's next row waits for this one.
        A database error is retried in memory until the row's lease runs out; should it
        still fail, the row is kept in :attr:`unrecorded` (this process never sends it
        again) and the error raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        sent = {"row_id": row_id, "at": self.clock.now(), "pmid": platform_message_id}
        self.unrecorded[row_id] = platform_message_id
        self._sent.append((sent, done, leased_until))
        if self._recorder is None or self._recorder.done():
            self._recorder = loop.create_task(self._record())
        await done

    async def _record(self) -> None:
        while self._sent:
            batch, self._sent = self._sent, []
            params = [sent for sent, _, _ in batch]
            leases = [until for _, _, until in batch if until is not None]
            patience = (min(leases) - self.clock.now()).total_seconds() if leases else 0.0
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_delay(max(patience, 1.0)),
                    wait=wait_random_exponential(multiplier=0.05, max=2.0),
                    retry=retry_if_exception_type(Exception),
                    reraise=True,
                ):
                    with attempt:
                        async with self.db.session() as s:
                            await s.execute(_MARK_SENT, params)
            except Exception as e:
                log.error(
                    "outbox rows %s went out, writing that down failed: %s (kept in memory)",
                    [p["row_id"] for p in params],
                    e,
                )
                for _, done, _ in batch:
                    if not done.done():
                        done.set_exception(e)
            else:
                for sent, done, _ in batch:
                    self.unrecorded.pop(sent["row_id"], None)
                    if not done.done():
                        done.set_result(None)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** max(attempt - 1, 0)))
        return random.uniform(ceiling / 2, ceiling)

    async def _retry(
        self,
        row: OutboxMessage,
        reason: str,
        *,
        delay: float | None = None,
        count_attempt: bool = True,
        delivery: Delivery | None = None,
    ) -> str:
        if count_attempt and row.attempts >= self.max_attempts:
            return await self._dead(
                row, f"gave up after {row.attempts} attempts: {reason}", delivery
            )
        wait = delay if delay is not None else self.backoff(row.attempts)
        values: dict[str, Any] = {
            "status": PENDING,
            "next_attempt_at": self.clock.now() + timedelta(seconds=wait),
            "locked_until": None,
            "last_error": reason,
        }
        if not count_attempt:
            values["attempts"] = OutboxMessage.attempts - 1
        async with self.db.session() as s:
            await s.execute(
                update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values)
            )
        log.info("outbox %s: retry in %.1fs (%s)", row.id, wait, reason)
        return PENDING

    async def _dead(self, row: OutboxMessage, reason: str, delivery: Delivery | None = None) -> str:
        async with self.db.session() as s:
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(status=DEAD, locked_until=None, last_error=reason)
            )
        log.warning("outbox %s dead-lettered: %s", row.id, reason)
        if delivery is not None:
            await _call_hooks(self.after_dead, "after-dead", row.id, delivery, reason)
        return DEAD

    async def _mark_unreachable(self, row: OutboxMessage, reason: str) -> None:
        """The person blocked us (or left): mark the identity, and do not try their other
        waiting messages (each would be refused again); they and this one are dead-lettered
        with the reason, in the same transaction as the identity."""
        async with self.db.session() as s:
            await s.execute(
                update(Identity)
                .where(Identity.channel == row.channel, Identity.address == row.address)
                .values(reachable=False, unreachable_reason=reason)
            )
            await s.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.channel == row.channel,
                    OutboxMessage.address == row.address,
                    # this row too: identity and messages change in one transaction
                    OutboxMessage.status.in_([PENDING, SENDING]),
                )
                .values(status=DEAD, locked_until=None, last_error=f"unreachable: {reason}")
                .execution_options(synchronize_session=False)
            )


def _claim_statements(postgres: bool) -> tuple[Any, Any]:
    """The claim's two statements, built once: which rows are due (``now``, ``channels``,
    ``limit``), and taking them (``now``, ``ids``, ``until``). Building them cost more than
    running them (a seventh of the server's time under WebSocket load)."""
    now: BindParameter[datetime] = bindparam("now")
    earlier = aliased(OutboxMessage)
    # a row waits while an older row to the same address waits or is in flight (keeps order);
    # older rows that are due now are claimed in the same batch and sent first. The waiting
    # addresses are computed once (not per candidate row): with a sudden backlog and stale
    # planner statistics a correlated NOT EXISTS went quadratic on PostgreSQL.
    waiting = (
        select(
            earlier.channel,
            earlier.address,
            func.min(earlier.id).label("first_id"),
        )
        .where(
            (earlier.status == PENDING) & (earlier.next_attempt_at > now)
            | (earlier.status == SENDING) & (earlier.locked_until > now)
        )
        .group_by(earlier.channel, earlier.address)
        .cte("waiting")
        .prefix_with("MATERIALIZED")
    )
    claimable = (OutboxMessage.status == PENDING) & (OutboxMessage.next_attempt_at <= now) | (
        OutboxMessage.status == SENDING
    ) & (OutboxMessage.locked_until <= now)
    due = (
        select(OutboxMessage.id)
        .outerjoin(
            waiting,
            (waiting.c.channel == OutboxMessage.channel)
            & (waiting.c.address == OutboxMessage.address),
        )
        .where(
            claimable,
            OutboxMessage.channel.in_(bindparam("channels", expanding=True)),
            waiting.c.first_id.is_(None) | (OutboxMessage.id < waiting.c.first_id),
        )
        .order_by(OutboxMessage.id)
        .limit(bindparam("limit"))
    )
    if postgres:
        due = due.with_for_update(skip_locked=True, of=OutboxMessage)
    take = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(bindparam("ids", expanding=True)), claimable)
        .values(
            status=SENDING,
            locked_until=bindparam("until"),
            attempts=OutboxMessage.attempts + 1,
        )
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    return due, take


_OUTBOX_TABLE = cast(Table, OutboxMessage.__table__)


async def _call_hooks(
    hooks: Sequence[Callable[..., Awaitable[None]]], kind: str, row_id: int, *args: Any
) -> None:
    """Every hook, each on its own: one that fails is logged and the others still run."""
    for hook in hooks:
        try:
            await hook(*args)
        except Exception:
            log.exception("%s hook failed for outbox %s", kind, row_id)


_MARK_SENT = (
    update(_OUTBOX_TABLE)
    .where(_OUTBOX_TABLE.c.id == bindparam("row_id"))
    .values(
        status=SENT,
        sent_at=bindparam("at"),
        platform_message_id=bindparam("pmid"),
        locked_until=None,
        last_error=None,
    )
)
