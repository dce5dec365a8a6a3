"""Platform deliveries already taken in, so that a redelivery is processed once.

Slack retries an event (``X-Slack-Retry-Num``, or a Socket Mode envelope again) when it did not
see our acknowledgement in time; the retry may reach another process or arrive after a restart.
``first_time`` records the delivery's id in the database and says whether it is new.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy import String, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import Database
from bot.storage.models import Base

KEEP = timedelta(days=2)  # Slack retries for about an hour; keep ids well beyond that
PRUNE_EVERY = 500  # delete the expired ids every this many deliveries (per process)


class SeenDelivery(Base):
    __tablename__ = "seen_deliveries"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


_calls = itertools.count(1)


async def first_time(db: Database, channel: str, delivery_id: str, now: datetime) -> bool:
    """Record ``delivery_id``; ``True`` when it was not seen before."""
    ins = pg_insert if db.is_postgres else sqlite_insert
    stmt = (
        ins(SeenDelivery)
        .values(channel=channel, delivery_id=delivery_id[:255], seen_at=now)
        .on_conflict_do_nothing(index_elements=["channel", "delivery_id"])
        .returning(SeenDelivery.delivery_id)
    )
    async with db.session() as s:
        new = (await s.execute(stmt)).scalar_one_or_none() is not None
        if next(_calls) % PRUNE_EVERY == 0:
            await s.execute(delete(SeenDelivery).where(SeenDelivery.seen_at < now - KEEP))
    return new
