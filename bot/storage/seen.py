"""Platform deliveries already taken in, so that a redelivery is processed once.

Slack retries an event (``X-Slack-Retry-Num``, or a Socket Mode envelope again) when it did not
see our acknowledgement in time; the retry may reach another process or arrive after a restart.
The delivery's id is recorded in the same transaction as what it caused (the engine's turn, a
staff reply: :func:`record`), so a crash between the two cannot leave an event marked as seen
that was never processed; ``seen_before`` drops a redelivery early.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy import String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import Database
from bot.storage.dialect import insert_for
from bot.storage.models import Base

KEEP = timedelta(days=2)  # Slack retries for about an hour; keep ids well beyond that
PRUNE_EVERY = 500  # delete the expired ids every this many deliveries (per process)


class SeenDelivery(Base):
    __tablename__ = "seen_deliveries"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


_calls = itertools.count(1)


async def record(s: AsyncSession, channel: str, delivery_id: str, now: datetime) -> bool:
    """Record ``delivery_id`` in the caller's transaction; ``False`` when it was seen before
    (the caller then does nothing: its transaction commits nothing of the redelivery)."""
    stmt = (
        insert_for(s)(SeenDelivery)
        .values(channel=channel, delivery_id=delivery_id[:255], seen_at=now)
        .on_conflict_do_nothing(index_elements=["channel", "delivery_id"])
        .returning(SeenDelivery.delivery_id)
    )
    return (await s.execute(stmt)).scalar_one_or_none() is not None


async def seen_before(db: Database, channel: str, delivery_id: str, now: datetime) -> bool:
    """Whether ``delivery_id`` was processed before (read only: the processing records it)."""
    async with db.session() as s:
        found = (
            await s.execute(
                select(SeenDelivery.delivery_id).where(
                    SeenDelivery.channel == channel,
                    SeenDelivery.delivery_id == delivery_id[:255],
                )
            )
        ).scalar_one_or_none()
        if next(_calls) % PRUNE_EVERY == 0:
            await s.execute(delete(SeenDelivery).where(SeenDelivery.seen_at < now - KEEP))
    return found is not None
