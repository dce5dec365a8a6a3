"""The staff dashboard in real Chromium: charts with the seeded history's numbers, CSV export,
filters, keyboard use, a phone viewport, and axe-core with no serious violations. The product
is built as ``concierge run`` builds it (channels.app + Runtime) and served over HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from bot.settings import Settings
from bot.storage.db import Database
from tests.auxil.dashboard_seed import seed
from tests.browser.conftest import NewPage
from tests.conftest import LiveServer

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
RANGE = "start=2026-03-02&end=2026-03-03"


@pytest.fixture
def server(
    sqlite_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> LiveServer:
    async def fill() -> None:
        db = Database(sqlite_url)
        await seed(db)
        await db.dispose()

    asyncio.run(fill())
    return start_server(make_settings(sqlite_url, admin_password="pw-123"))


async def login(page: Page, url: str, then: str) -> None:
    await page.goto(f"{url}{then}")
    await expect(page).to_have_url(f"{url}/admin/login")
    await page.fill("#name", "Owner")
    await page.fill("#password", "pw-123")
    await page.click("button[type=submit]")
    await page.goto(f"{url}{then}")


async def cells(page: Page, chart: str, column: str) -> list[str]:
    loc = page.locator(f"#chart-{chart} td[data-col={column}]")
    return [t.strip() for t in await loc.all_text_contents()]


async def test_dashboard_draws_the_seeded_numbers_and_exports_them(
    new_page: NewPage, server: LiveServer
) -> None:
    page = await new_page()
    await login(page, server.url, f"/admin/dashboard?{RANGE}")
    await expect(page.locator("h1")).to_have_text("Dashboard")
    figures = page.locator("ul.figures li")
    await expect(figures.nth(0)).to_have_text("3Conversations")
    await expect(figures.nth(1)).to_have_text("50.0%Contained (no person)")
    await expect(figures.nth(4)).to_have_text("2Handoffs")
    await expect(figures.nth(5)).to_have_text("50.0%Answers rated helpful")
    # every chart is drawn (pygal's SVG), its bars carry the numbers of the table
    await expect(page.locator("section.chart svg[role=img]")).to_have_count(12)
    assert await cells(page, "conversations", "conversations") == ["2", "2"]
    assert await cells(page, "outcomes", "answered") == ["2", "3"]
    assert await cells(page, "outcomes", "clarified") == ["1", "0"]
    assert await cells(page, "handoff_times", "first_response_median_min") == ["10", "30", "20"]
    assert await cells(page, "funnel", "contacts") == ["1", "1", "2", "0", "0", "0", "0", "0", "0"]
    assert await cells(page, "prompts", "lift") == ["0.0%"]
    handoff_bars = page.locator("#chart-handoffs svg .series desc.value")
    assert await handoff_bars.all_text_contents() == ["1", "1"]
    outcome_bars = page.locator("#chart-outcomes svg .serie-0 desc.value")  # answered
    assert await outcome_bars.all_text_contents() == ["2", "3"]

    # the CSV link downloads the chart's own rows, with the filters of the page
    async with page.expect_download() as dl:
        await page.locator("#chart-csat a", has_text="CSV").click()
    download = await dl.value
    assert download.suggested_filename == "csat_2026-03-02_2026-03-03.csv"
    text = Path(await download.path()).read_text()
    assert list(csv.reader(io.StringIO(text))) == [
        ["day", "helpful", "not_helpful", "helpful_share"],
        ["2026-03-02", "1", "0", "1"],
        ["2026-03-03", "0", "1", "0"],
    ]

    # filter by language: German only
    await page.select_option("#f-language", "de")
    await page.click("form.filters button")
    await expect(page).to_have_url(f"{server.url}/admin/dashboard?{RANGE}&language=de&channel=")
    await expect(figures.nth(0)).to_have_text("1Conversations")
    assert await cells(page, "outcomes", "fallback") == ["1", "0"]


async def test_dashboard_by_keyboard_on_a_phone_without_serious_axe_violations(
    new_page: NewPage, server: LiveServer
) -> None:
    page = await new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    await login(page, server.url, f"/admin/dashboard?{RANGE}")
    # nothing wider than the phone's screen
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    # keyboard only: skip link, then the filters; change the range and apply with Enter
    await page.keyboard.press("Tab")
    await expect(page.locator("a.skip")).to_be_focused()
    await page.locator("#f-start").focus()
    await page.keyboard.type("03032026")  # Chromium's date field, month-day-year in en-US
    apply = page.locator("form.filters button")
    for _ in range(12):  # on through the date fields and the two choices to "Apply"
        if await apply.evaluate("b => b === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await expect(apply).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(
        f"{server.url}/admin/dashboard?start=2026-03-03&end=2026-03-03&language=&channel="
    )
    assert await cells(page, "conversations", "conversations") == ["2"]
    # a chart's table opens from the keyboard
    summary = page.locator("#chart-handoffs summary")
    await summary.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#chart-handoffs table")).to_be_visible()

    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate(
        """async () => await axe.run(document, {
             runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                             "best-practice"]}})"""
    )
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], serious


def test_exports_need_login_and_name_bad_input(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/admin/stats/conversations.json")
    assert r.status_code == 401
    r = httpx.get(f"{server.url}/admin/dashboard", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    with httpx.Client(base_url=server.url) as c:
        import re

        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/admin/login").text)
        assert csrf
        c.post("/admin/login", data={"name": "x", "password": "pw-123", "csrf": csrf[1]})
        r = c.get(f"/admin/stats/handoffs.json?{RANGE}")
        assert r.status_code == 200
        assert r.json()["rows"] == [["asked", 1], ["unsure", 1]]
        assert r.json()["filters"]["start"] == "2026-03-02"
        r = c.get(f"/admin/stats/handoffs.csv?{RANGE}&channel=web")
        assert r.headers["content-type"].startswith("text/csv")
        assert r.text == "reason,handoffs\nunsure,1\n"
        r = c.get("/admin/stats/nothing.json")
        assert r.status_code == 404 and "charts: conversations" in r.json()["error"]
        r = c.get("/admin/stats/handoffs.xml")
        assert r.status_code == 404
        r = c.get("/admin/stats/handoffs.json?start=03/02/2026")
        assert r.status_code == 400 and "YYYY-MM-DD" in r.json()["error"]
        r = c.get("/admin/dashboard?start=2026-03-05&end=2026-03-01")
        assert r.status_code == 400 and "before" in r.text
