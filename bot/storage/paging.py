"""A large result read in batches by an increasing key (keyset pagination): each batch starts
after the last key of the one before, so rows written meanwhile neither repeat nor shift."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TypeVarTuple

from sqlalchemy import Row, Select, SQLColumnExpression
from sqlalchemy.ext.asyncio import AsyncSession

_Ts = TypeVarTuple("_Ts")


async def batches(
    session: AsyncSession,
    stmt: Select[int, *_Ts],
    key: SQLColumnExpression[int],
    size: int,
    *,
    after: int = 0,
) -> AsyncIterator[Sequence[Row[int, *_Ts]]]:
    """The rows of ``stmt`` whose ``key`` is above ``after``, in ``key`` order, ``size`` at a
    time; ``key`` is the statement's first column. The next batch is read when asked for."""
    while True:
        rows = (await session.execute(stmt.where(key > after).order_by(key).limit(size))).all()
        if not rows:
            return
        after = rows[-1][0]
        yield rows
