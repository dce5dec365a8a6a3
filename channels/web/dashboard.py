"""The staff dashboard at ``/admin/dashboard``: charts of :mod:`bot.stats`, drawn on the server
as SVG by pygal (no script, no CDN), each with its data as a table and as
``/admin/stats/<chart>.csv`` and ``/admin/stats/<chart>.json``.

Filters are query parameters (``start``, ``end``, ``language``, ``channel``), so a filtered view
is a link to share. Login: the console's session (``signed_in``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import pygal
from markupsafe import Markup
from pygal.style import Style
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.lifecycle.service import LifecycleService
from bot.runtime import Runtime
from bot.stats import CHARTS, Chart, FilterError, Filters, prepare
from channels.web.admin.console import Console, Session, signed_in

# pygal adds an import finder for its map plugins (unused here) that has no find_spec(): every
# later import of a missing module then warns (an error under -W error) on Python 3.11
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

CHANNELS = ("web", "telegram", "slack")

# colours with at least 3:1 contrast on white, told apart without colour by the legend's order
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#222222",
    foreground_strong="#222222",
    foreground_subtle="#555555",
    font_family="system-ui, sans-serif",
    colors=("#1f5fa8", "#b3541e", "#2e7d32", "#7b1fa2", "#8d6e00", "#c62828", "#00695c"),
    title_font_size=15,
    legend_font_size=12,
    label_font_size=11,
    major_label_font_size=11,
    value_font_size=11,
)


@dataclass(frozen=True)
class Plot:
    """How a chart is drawn: pygal's kind and the columns plotted as series."""

    kind: type[Any]
    series: Sequence[str]
    labels: Callable[[list[Any]], str] = lambda row: str(row[0])


PLOTS: dict[str, Plot] = {
    "conversations": Plot(pygal.Line, ["conversations", "customer_messages"]),
    "containment": Plot(pygal.StackedBar, ["contained", "handed_off"]),
    "outcomes": Plot(pygal.StackedBar, ["answered", "clarified", "fallback", "handed_off"]),
    "handoffs": Plot(pygal.Bar, ["handoffs"]),
    "handoff_times": Plot(pygal.Bar, ["first_response_median_min", "resolution_median_min"]),
    "csat": Plot(pygal.StackedBar, ["helpful", "not_helpful"]),
    "handoff_csat": Plot(pygal.Bar, ["ratings"]),
    "funnel": Plot(pygal.HorizontalBar, ["contacts"]),
    "transitions": Plot(pygal.StackedBar, []),  # every stage column
    "prompts": Plot(pygal.Bar, ["treated_rate", "holdout_rate"]),
    "prompt_skips": Plot(pygal.Bar, ["skips"], lambda row: f"{row[0]}: {row[1]}"),
    "internal": Plot(pygal.Bar, ["reached", "engaged"]),
}

# charts that share figures read them in one session
GROUPS = (
    ("conversations", "containment"),
    ("outcomes",),
    ("handoffs", "handoff_times", "handoff_csat"),
    ("csat",),
    ("funnel",),
    ("transitions",),
    ("prompts", "prompt_skips"),
    ("internal",),
)

KEY_FIGURES = (
    ("conversations", "conversations", "Conversations", "count"),
    ("containment", "containment_rate", "Contained (no person)", "share"),
    ("outcomes", "answered_share", "Turns answered", "share"),
    ("outcomes", "fallback_share", "Turns not understood", "share"),
    ("handoffs", "handoffs", "Handoffs", "count"),
    ("csat", "helpful_share", "Answers rated helpful", "share"),
)


DAILY_LIMIT = 62  # longer ranges of days are drawn a week a bar (the table keeps the days)


def by_week(rows: list[list[Any]], idx: list[int]) -> list[list[Any]]:
    """Rows of days summed into weeks (Monday first), the columns ``idx`` only."""
    weeks: dict[str, list[Any]] = {}
    for r in rows:
        day = date.fromisoformat(str(r[0]))
        monday = (day - timedelta(days=day.weekday())).isoformat()
        w = weeks.setdefault(monday, [f"week of {monday}", *([0] * len(idx))])
        for j, i in enumerate(idx, 1):
            w[j] += r[i] or 0
    return list(weeks.values())


def svg(chart: Chart) -> Markup:
    """The chart as inline SVG (pygal; its tooltip script left out: no script on the page)."""
    plot = PLOTS[chart.id]
    series = list(plot.series) or chart.columns[1:]
    idx = [chart.columns.index(c) for c in series]
    rows = chart.rows
    if chart.columns[0] == "day" and len(rows) > DAILY_LIMIT:
        rows, idx = by_week(rows, idx), list(range(1, len(idx) + 1))
    many = len(rows) > 16
    g = plot.kind(
        js=[],
        style=STYLE,
        width=720,
        height=300,
        show_legend=len(series) > 1,
        legend_at_bottom=True,
        x_label_rotation=45 if many or chart.id in ("prompt_skips", "internal") else 0,
        show_minor_x_labels=not many,
        x_labels_major_every=max(1, len(rows) // 10) if many else None,
        print_values=not many and len(rows) > 0,
        print_zeroes=False,
        include_x_axis=True,  # counts start at zero
        no_data_text="No data in this range",
        truncate_label=24,
        margin=12,
    )
    g.x_labels = [plot.labels(r) for r in rows]
    for name, i in zip(series, idx, strict=True):
        g.add(name.replace("_", " "), [r[i] for r in rows])
    out = g.render(disable_xml_declaration=True, is_unicode=True)
    # the SVG is decoration of the table below it: labelled for those who see it only
    out = out.replace("<svg ", f'<svg role="img" aria-label="{_attr(chart.title)}" ', 1)
    # pygal builds the SVG with an XML tree: every label and value in it is escaped text
    return Markup(out)  # noqa: S704


def _attr(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(v: Any, column: str) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and (
        column.endswith("rate") or column.endswith("share") or column.startswith("lift")
    ):
        return f"{100 * v:.1f}%"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


class Dashboard(Console):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.env.filters["cell"] = _cell

    def _filters(self, request: Request) -> Filters:
        today = self.runtime.clock.now().date()
        return Filters.parse(dict(request.query_params), today)

    def _stages(self) -> Sequence[str] | None:
        lifecycle = self.runtime.maybe_service(LifecycleService)
        stages = lifecycle.config.stages if lifecycle is not None else None
        return list(stages) if stages else None

    async def _charts(self, f: Filters, names: Sequence[str]) -> list[Chart]:
        """The charts ``names``. On PostgreSQL a page's charts are read in parallel, on
        connections of their own, in groups that share figures (the days' roll-ups are made
        first, once); SQLite reads them one after another."""
        groups = [[n for n in g if n in names] for g in GROUPS]
        groups = [g for g in groups if g] + [[n] for n in names if not any(n in g for g in GROUPS)]
        if not self.runtime.db.is_postgres or len(groups) == 1:
            async with self.runtime.db.session() as s:
                got = {n: await self._one(s, n, f) for n in names}
        else:
            async with self.runtime.db.session() as s:
                await prepare(s, f)
            parts = await asyncio.gather(*(self._group(g, f) for g in groups))
            got = {c.id: c for part in parts for c in part}
        return [got[n] for n in names]

    async def _group(self, names: list[str], f: Filters) -> list[Chart]:
        async with self.runtime.db.session() as s:
            return [await self._one(s, n, f) for n in names]

    async def _one(self, s: Any, name: str, f: Filters) -> Chart:
        stages = self._stages()
        if stages and name in ("funnel", "transitions"):
            return await CHARTS[name](s, f, stages)  # type: ignore[call-arg]
        return await CHARTS[name](s, f)

    @signed_in
    async def view(self, request: Request, sess: Session) -> Response:
        try:
            f = self._filters(request)
        except FilterError as e:
            f = Filters.last_days(self.runtime.clock.now().date())
            return await self._render(request, sess, f, error=str(e), status=400)
        return await self._render(request, sess, f)

    async def _render(
        self,
        request: Request,
        sess: Session,
        f: Filters,
        *,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        charts = await self._charts(f, list(CHARTS))
        by_id = {c.id: c for c in charts}
        query = urlencode(
            {
                k: v
                for k, v in (
                    ("start", f.start.isoformat()),
                    ("end", f.end.isoformat()),
                    ("language", f.language or ""),
                    ("channel", f.channel or ""),
                )
                if v
            }
        )
        figures = [
            (label, by_id[cid].summary.get(key), kind) for cid, key, label, kind in KEY_FIGURES
        ]
        return self.page(
            "dashboard.html",
            sess,
            status,
            charts=[(c, svg(c)) for c in charts],
            figures=figures,
            filters=f,
            query=query,
            languages=self.runtime.settings.languages,
            channels=CHANNELS,
            error=error,
        )

    @signed_in
    async def export(self, request: Request, sess: Session) -> Response:
        name = request.path_params["chart"]
        fmt = request.path_params["fmt"]
        if name not in CHARTS:
            return JSONResponse(
                {"error": f"no chart {name[:40]!r}; charts: {', '.join(CHARTS)}"}, 404
            )
        try:
            f = self._filters(request)
        except FilterError as e:
            return JSONResponse({"error": str(e)}, 400)
        [chart] = await self._charts(f, [name])
        if fmt == "json":
            return JSONResponse(chart.as_dict(f))
        filename = f"{name}_{f.start.isoformat()}_{f.end.isoformat()}.csv"
        return PlainTextResponse(
            chart.csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


def routes(runtime: Runtime) -> list[BaseRoute]:
    d = Dashboard(runtime)
    return [
        Route("/admin/dashboard", d.view),
        Route("/admin/stats/{chart:str}.{fmt:str}", _only_csv_json(d.export)),
    ]


def _only_csv_json(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        if request.path_params["fmt"] not in ("csv", "json"):
            return JSONResponse({"error": "export as .csv or .json"}, 404)
        return await handler(request)

    return wrapped
