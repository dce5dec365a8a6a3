"""The chat widget in a real browser, against the live product (SQLite, demo content)."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect

BOT = "li.from-bot .bubble"


async def open_chat(browser: Any, url: str, **context: Any) -> Page:
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(url)
    await page.locator("#concierge-widget .launcher").click()
    await expect(page.locator("#concierge-widget textarea")).to_be_focused()
    return page


async def ask(page: Page, text: str) -> None:
    box = page.locator("#concierge-widget textarea")
    await box.fill(text)
    await box.press("Enter")


async def test_visitor_asks_and_sees_answer_then_history_after_reload(
    browser: Any, live_server: str
) -> None:
    page = await open_chat(browser, live_server)
    await ask(page, "Do you ship to Austria?")
    answer = page.locator(BOT).first
    await expect(answer).to_contain_text("EU")
    await page.screenshot(path="/tmp/widget-desktop.png")
    await page.reload()
    await page.locator("#concierge-widget .launcher").click()
    await expect(page.locator("li.from-user .bubble").first).to_have_text("Do you ship to Austria?")
    await expect(page.locator(BOT).first).to_contain_text("EU")
    assert page.errors == []  # type: ignore[attr-defined]


async def test_html_in_messages_is_shown_as_text(browser: Any, live_server: str) -> None:
    page = await open_chat(browser, live_server)
    payload = '<img src=x onerror="window.__xss=1">'
    await ask(page, payload)
    await expect(page.locator("li.from-user .bubble").first).to_have_text(payload)
    await expect(page.locator(BOT).first).to_be_visible()
    assert await page.evaluate("window.__xss") is None
    assert await page.locator("#concierge-widget img").count() == 0


async def test_quick_reply_button_sends_its_payload(browser: Any, live_server: str) -> None:
    page = await open_chat(browser, live_server)
    await ask(page, "How long is the warranty?")
    yes = page.locator("li.from-bot .buttons button.quick").first
    await expect(yes).to_be_visible()
    await yes.click()
    await expect(page.locator(BOT).last).to_have_text("Thanks for letting me know!")


async def test_keyboard_only(browser: Any, live_server: str) -> None:
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await page.goto(live_server)
    launcher = page.locator("#concierge-widget .launcher")
    await launcher.focus()
    await page.keyboard.press("Enter")
    box = page.locator("#concierge-widget textarea")
    await expect(box).to_be_focused()
    await page.keyboard.type("hello")
    await page.keyboard.press("Enter")
    await expect(page.locator(BOT).first).to_contain_text("Brewhaus")
    await page.keyboard.press("Escape")
    await expect(page.locator("#concierge-widget .panel")).to_be_hidden()
    await expect(launcher).to_be_focused()
    assert await launcher.get_attribute("aria-expanded") == "false"


async def test_phone_screen_panel_fills_the_viewport(browser: Any, live_server: str) -> None:
    page = await open_chat(browser, live_server, viewport={"width": 375, "height": 667})
    box = await page.locator("#concierge-widget .panel").bounding_box()
    assert box is not None
    assert box["width"] == 375 and box["height"] == 667
    await ask(page, "hello")
    await expect(page.locator(BOT).first).to_be_visible()
    await page.screenshot(path="/tmp/widget-phone.png")


async def test_message_typed_offline_arrives_once_after_reconnect(
    browser: Any, live_server: str
) -> None:
    ctx = await browser.new_context()
    page = await ctx.new_page()
    sockets: list[Any] = []

    def through(route: Any) -> None:  # a real connection to the server, closable by the test
        route.connect_to_server()
        sockets.append(route)

    await page.route_web_socket(re.compile(r".*/ws/chat.*"), through)
    await page.goto(live_server)
    await page.locator("#concierge-widget .launcher").click()
    await ask(page, "hello")
    await expect(page.locator(BOT)).to_have_count(1)
    await sockets[-1].close(code=1006, reason="network lost")  # the network drops
    await expect(page.locator("#concierge-widget .status")).to_have_text("Reconnecting…")
    await ask(page, "Can I pay with PayPal?")  # typed while offline: queued
    await expect(page.locator("li.from-user .bubble", has_text="PayPal")).to_have_count(1)
    await expect(page.locator(BOT, has_text="PayPal")).to_have_count(1, timeout=15000)
    assert len(sockets) == 2
    await expect(page.locator("#concierge-widget .status")).to_have_text("")
    # after a reload the server's history has it once, answered once
    await page.reload()
    await page.locator("#concierge-widget .launcher").click()
    await expect(page.locator("li.from-user .bubble", has_text="PayPal")).to_have_count(1)
    await expect(page.locator(BOT, has_text="PayPal")).to_have_count(1)
