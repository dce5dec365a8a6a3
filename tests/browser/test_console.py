"""The staff console in real headless Chromium: the first-start link `concierge run` prints,
login, the live inbox (a new handoff appears without a reload; replies reach a web visitor and
a Telegram chat), conversations search, export and erase; keyboard only, a phone viewport, and
axe-core (vendored: tests/browser/vendor/axe-core) with no serious violations on every page."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from playwright.async_api import Page, expect

from bot.settings import Settings
from bot.staff import setup_token
from tests.auxil.build_messages import tg_message
from tests.auxil.process import ConciergeProcess
from tests.auxil.warm import warm_nlu
from tests.browser.conftest import NewPage
from tests.conftest import REPO, LiveServer
from tests.fakes.telegram_api import FakeTelegram

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
PW = "correct horse battery"


async def no_serious_axe_violations(page: Page) -> None:
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
    assert serious == [], f"{page.url}: {serious}"


async def fill_by_keyboard(page: Page, values: list[str]) -> None:
    """Tab to each field in turn and type; Enter submits."""
    for v in values:
        await page.keyboard.press("Tab")
        await page.keyboard.type(v)
    await page.keyboard.press("Enter")


async def create_owner(page: Page, link: str) -> None:
    await page.goto(link)
    await expect(page.locator("h1")).to_have_text("Create the owner account")
    await no_serious_axe_violations(page)
    await page.locator("#name").focus()
    await page.keyboard.type("Olga Owner")
    await fill_by_keyboard(page, ["olga@shop.example", PW, PW])
    await expect(page).to_have_url(re.compile(r"/admin/inbox$"))
    await expect(page.locator("header.top")).to_contain_text("Olga Owner (owner)")


def test_concierge_run_prints_a_one_time_setup_link(
    sqlite_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = warm_nlu(make_settings(sqlite_url))
    log = tmp_path / "run.log"
    proc = ConciergeProcess(
        {
            "CONCIERGE_DATABASE_URL": sqlite_url,
            "CONCIERGE_CONTENT_DIR": str(REPO),
            "CONCIERGE_MODEL_DIR": str(settings.resolved_model_dir),
            "CONCIERGE_SECRET_KEY": "run-secret",
        },
        log,
    ).start()
    try:
        m = re.search(r"(http://localhost:\d+/admin/setup\?token=\S+)", log.read_text())
        assert m, log.read_text()
        link = m.group(1).replace("localhost", "127.0.0.1")
        asyncio.run(_use_link(link, proc.url))
    finally:
        proc.stop()


async def _use_link(link: str, base: str) -> None:
    from playwright.async_api import async_playwright

    from tests.browser.conftest import ARGS, CHROMIUM

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = await (await b.new_context()).new_page()
            await create_owner(page, link)
            # single use: the same link again says so
            await page.goto(link)
            await expect(page.locator(".error")).to_contain_text("used already")
        finally:
            await b.close()


@pytest.fixture
def server(
    sqlite_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
    telegram: FakeTelegram,
) -> LiveServer:
    settings = make_settings(
        sqlite_url,
        handoff_hours="mon-sun 00:00-23:59",
        telegram_token=telegram.token,
        telegram_api_url=telegram.url,
    )
    return start_server(warm_nlu(settings))


async def frames_until(ws: Any, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        while True:
            f = json.loads(await ws.recv())
            if pred(f):
                return f

    return await asyncio.wait_for(go(), 20)


async def test_live_inbox_replies_reach_a_web_visitor_and_a_telegram_chat(
    new_page: NewPage, server: LiveServer, telegram: FakeTelegram
) -> None:
    page = await new_page()
    await create_owner(page, f"{server.url}/admin/setup?token={setup_token('test-secret')}")
    items = page.locator("#items li a")
    await expect(page.locator("#items")).to_contain_text("Nobody is waiting here.")

    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/chat") as ws:
        await frames_until(ws, lambda f: f["type"] == "history")
        await ws.send(json.dumps({"type": "message", "text": "I want to talk to a human"}))
        await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
        await ws.send(json.dumps({"type": "message", "text": "<b>bold?</b> order 42"}))
        # the new handoff shows up without a reload, with the last question and its wait
        await expect(items).to_have_count(1)
        await expect(items.first.locator(".q")).to_have_text("<b>bold?</b> order 42")
        await expect(items.first.locator(".sla")).to_have_class(re.compile("sla-ok"))
        await expect(items.first).to_contain_text("web · en")
        telegram.push_update(tg_message("I want to talk to a human", user_id=4711))
        await expect(items).to_have_count(2)
        await expect(items.nth(1)).to_contain_text("Anna")

        # keyboard only: tab to the first handoff and open it
        await items.first.focus()
        await page.keyboard.press("Enter")
        transcript = page.locator("#transcript")
        await expect(transcript.locator("li.customer", has_text="order 42")).to_have_count(1)
        assert await transcript.locator("b").count() == 0  # the customer's HTML is text
        await expect(page.locator("aside.panel")).to_contain_text("Stage")
        await expect(page.locator("header.top")).to_contain_text("Times: Europe/Berlin")
        await no_serious_axe_violations(page)
        await page.locator("#reply-text").focus()
        await page.keyboard.type("check order 42 first")
        await page.locator("button", has_text="Add internal note").click()
        await expect(transcript.locator("li.internal")).to_have_count(1)
        await page.fill("#reply-text", "Your order 42 ships today.")
        await page.locator("#reply-text").press("Tab")
        await page.keyboard.press("Enter")  # the Send button
        f = await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "staff")
        assert f["text"] == "Your order 42 ships today."
        assert f["metadata"]["staff_name"] == "Olga Owner"
        # a message of the customer shows up in the open transcript without a reload
        await ws.send(json.dumps({"type": "message", "text": "great, thanks"}))
        await expect(transcript.locator("li.customer", has_text="great, thanks")).to_have_count(1)

    # the Telegram customer: a canned reply in their language
    await items.nth(1).click()
    await page.select_option("#canned", label="Order status")
    await expect(page.locator("#reply-text")).to_have_value(re.compile("checking your order"))
    await page.locator("form.reply button[type=submit]", has_text="Send").click()
    sent = telegram.wait_for(
        "sendMessage",
        1,
        timeout=20,
        where=lambda c: (
            str(c.params["chat_id"]) == "4711" and "checking your order" in c.params["text"]
        ),
    )
    assert sent
    await page.locator("button", has_text="Resolve").click()
    await page.goto(f"{server.url}/admin/inbox?filter=resolved")
    await expect(page.locator("#items li a")).to_have_count(1)


async def test_phone_viewport_inbox_is_readable(new_page: NewPage, server: LiveServer) -> None:
    page = await new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    await create_owner(page, f"{server.url}/admin/setup?token={setup_token('test-secret')}")
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/chat") as ws:
        await frames_until(ws, lambda f: f["type"] == "history")
        await ws.send(json.dumps({"type": "message", "text": "I want to talk to a human"}))
        await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
    item = page.locator("#items li a").first
    await expect(item).to_be_visible()
    box = await item.bounding_box()
    assert box is not None and box["width"] > 300  # the list takes the phone's width
    await item.click()
    await expect(page.locator("#reply-text")).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone: {width}px"
    reply = await page.locator("#reply-text").bounding_box()
    assert reply is not None and reply["width"] > 250
    await no_serious_axe_violations(page)


async def test_conversations_search_export_and_erase(new_page: NewPage, server: LiveServer) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/chat") as ws:
        await frames_until(ws, lambda f: f["type"] == "history")
        await ws.send(json.dumps({"type": "message", "text": "How long is the warranty?"}))
        await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
    page = await new_page()
    await create_owner(page, f"{server.url}/admin/setup?token={setup_token('test-secret')}")
    await page.get_by_role("link", name="Conversations").click()
    await no_serious_axe_violations(page)
    await page.get_by_label("Search").fill("warranty")
    await page.get_by_label("Search").press("Enter")
    rows = page.locator("#conversations tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("How long is the warranty?")
    await page.get_by_label("Search").fill("no such words anywhere")
    await page.get_by_label("Search").press("Enter")
    await expect(rows.first).to_contain_text("No conversation matches.")
    await page.get_by_label("Search").fill("warranty")
    await page.get_by_label("Outcome").select_option("answered")
    await page.get_by_label("Search").press("Enter")
    await rows.first.locator("a").click()
    await expect(page.locator("#transcript .nlu").first).to_contain_text(re.compile(r"intent faq/"))
    await expect(page.locator("#transcript .outcome").first).to_have_text("answered")
    await no_serious_axe_violations(page)

    async with page.expect_download() as dl:
        await page.get_by_role("link", name="Export everything (JSON)").click()
    path = await (await dl.value).path()
    doc = json.loads(Path(path).read_text())
    assert any(m["text"] == "How long is the warranty?" for m in doc["messages"])
    # erase: two steps, by keyboard
    summary = page.locator("summary", has_text="Erase this person")
    await summary.focus()
    await page.keyboard.press("Enter")
    erase = page.locator("button.danger")
    await erase.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_have_text("Erased")
    await no_serious_axe_violations(page)
    await page.goto(f"{server.url}/admin/conversations?q=warranty")
    await expect(rows.first).to_contain_text("No conversation matches.")
    for path_ in ("/admin/contacts", "/admin/staff", "/admin/inbox"):
        await page.goto(server.url + path_)
        await no_serious_axe_violations(page)


async def test_login_page_by_keyboard(new_page: NewPage, server: LiveServer) -> None:
    page = await new_page()
    await create_owner(page, f"{server.url}/admin/setup?token={setup_token('test-secret')}")
    await page.locator("form.logout button").click()
    await expect(page).to_have_url(re.compile(r"/admin/login$"))
    await no_serious_axe_violations(page)
    await page.locator("#name").focus()
    await page.keyboard.type("olga@shop.example")
    await fill_by_keyboard(page, ["wrong password"])
    await expect(page.locator(".error")).to_have_text("Wrong password.")
    await page.locator("#name").fill("Olga Owner")
    await page.locator("#password").fill(PW)
    await page.locator("#password").press("Enter")
    await expect(page).to_have_url(re.compile(r"/admin/inbox$"))
