"""The internal-updates service: update files in, deliveries out, under the guard rails.

``run_once(now)`` is one scheduler round (clock-injectable):

1. *expand* scheduled updates into one delivery per employee, due at the scheduled wall-clock
   time in each employee's own time zone (or one channel post);
2. *decide* each due delivery: skip (inactive, muted topic), defer (holiday, day off, outside
   working hours), hold for the weekly digest (low priority, or the weekly cap reached; an
   ``important`` update passes the cap, within its own limit), or send through the outbox;
3. *bundle* held deliveries into one digest message per employee at the digest time;
4. create the weekly support & sales digest (``team_digest``) once a week.

Messages go out through the outbox under idempotency keys, so a round run twice, or by two
processes, never sends anything twice.
"""

from __future__ import annotations

from datetime import datetime

from bot.internal.base import (
    BATCH as BATCH,
)
from bot.internal.base import (
    BUNDLED as BUNDLED,
)
from bot.internal.base import (
    HELD as HELD,
)
from bot.internal.base import (
    PLANNED as PLANNED,
)
from bot.internal.base import (
    SENT as SENT,
)
from bot.internal.base import (
    SKIPPED as SKIPPED,
)
from bot.internal.base import (
    WEEK as WEEK,
)
from bot.internal.engagement import Engagement
from bot.internal.files import Files
from bot.internal.planning import Planning
from bot.outreach.stats import RoundStats


class InternalService(Planning, Files, Engagement):
    """One per runtime (``bot.internal.service_of(runtime)``). Its layers: ``files`` (update
    files in), ``planning`` (a round), ``rules`` (one delivery's decision), ``digests``,
    ``engagement``; ``base`` holds what they share."""

    async def round(self, now: datetime) -> RoundStats:
        """The ``internal updates`` job: changed files first, then a scheduler round."""
        await self.sync_files_if_changed()
        return await self.run_once(now)
