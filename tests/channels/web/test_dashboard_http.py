"""The dashboard page over real HTTP on SQLite and PostgreSQL (where its charts are read in
parallel): the seeded history's numbers, whichever way they were read."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx

from bot.settings import Settings
from bot.storage.db import Database
from tests.auxil.dashboard_seed import seed
from tests.conftest import LiveServer


def cells(html: str, chart: str, col: str) -> list[str]:
    section = html.split(f'id="chart-{chart}"', 1)[1].split("</section>", 1)[0]
    return re.findall(rf'data-col="{col}">([^<]*)</td>', section)


def test_the_page_shows_the_seeded_figures(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> None:
    async def fill() -> None:
        db = Database(db_url)
        await seed(db)
        await db.dispose()

    asyncio.run(fill())
    server = start_server(make_settings(db_url, admin_password="pw-123"))
    with httpx.Client(base_url=server.url, timeout=30) as c:
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/admin/login").text)
        assert csrf
        c.post("/admin/login", data={"name": "x", "password": "pw-123", "csrf": csrf[1]})
        for _ in range(2):  # the days' roll-ups made, then read
            html = c.get("/admin/dashboard?start=2026-03-02&end=2026-03-03").text

            assert '<span class="value">3</span>Conversations' in html
            assert cells(html, "outcomes", "answered") == ["2", "3"]
            assert cells(html, "containment", "handed_off") == ["1", "1"]
            assert cells(html, "handoff_times", "resolution_median_min") == ["60", "–", "60"]
            assert cells(html, "prompt_skips", "skips") == ["2", "1"]
            assert cells(html, "internal", "engaged") == ["1"]
