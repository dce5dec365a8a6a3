"""A dashboard chart: a title, column names and rows of plain values, so the page draws it,
and ``/admin/stats/<chart>.csv`` / ``.json`` export exactly what is drawn."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.stats.filters import Filters


@dataclass
class Chart:
    id: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    kind: str = "bar"  # line | bar | stacked | table
    note: str = ""
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, filters: Filters | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "summary": self.summary,
        }
        if self.note:
            out["note"] = self.note
        if filters is not None:
            out["filters"] = {
                "start": filters.start.isoformat(),
                "end": filters.end.isoformat(),
                "language": filters.language,
                "channel": filters.channel,
            }
        return out

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for row in self.rows:
            w.writerow(["" if v is None else _csv_value(v) for v in row])
        return buf.getvalue()


ChartFn = Callable[[AsyncSession, Filters], Awaitable[Chart]]


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".") if math.isfinite(v) else ""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") and not _number(v):
        return "'" + v  # a spreadsheet would run it as a formula
    return v


def _number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
