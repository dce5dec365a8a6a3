"""The widget never leaves a visitor at a dead end, and works without a mouse (issue 23): real
Chromium against the whole product (SQLite, demo content, staff reachable all day through the
inbox). The accessibility check runs axe-core (vendored: tests/browser/vendor/axe-core)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from bot.settings import Settings
from tests.browser.conftest import NewPage
from tests.conftest import LiveServer

W = "#concierge-widget"
GREETING = f"{W} li.greeting"
BOT = f"{W} li.from-bot:not(.greeting) .bubble"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


@pytest.fixture
def server(
    sqlite_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> str:
    # the team answers all day (the support hours answer says so too: one source of truth)
    settings = make_settings(sqlite_url, admin_password="pw", handoff_hours="mon-sun 00:00-23:59")
    return start_server(settings).url


async def open_chat(page: Page, url: str) -> None:
    await page.goto(url)
    await page.locator(f"{W} .launcher").click()
    await expect(page.locator(f"{W} textarea")).to_be_focused()


async def ask(page: Page, text: str) -> None:
    box = page.locator(f"{W} textarea")
    await box.fill(text)
    await box.press("Enter")


async def test_greeting_on_open_in_the_browsers_language(new_page: NewPage, server: str) -> None:
    page = await new_page(locale="de-DE")
    await open_chat(page, server)
    hello = page.locator(GREETING)
    await expect(hello.locator(".bubble")).to_contain_text("Hallo! Ich bin der Brewhaus-Assistent")
    await expect(hello.locator("button.quick")).to_have_text(
        ["Versand", "Rückgabe", "Servicezeiten"]
    )
    await hello.locator("button.quick", has_text="Servicezeiten").click()
    await expect(page.locator(BOT, has_text="Montag–Sonntag 00:00–23:59")).to_have_count(1)


async def test_handoff_in_progress_still_answers_a_faq_question_and_stop(
    new_page: NewPage, server: str
) -> None:
    page = await new_page(locale="de-DE")
    await open_chat(page, server)
    await ask(page, "Ich möchte mit einem Menschen sprechen")
    await expect(page.locator(BOT).last).to_contain_text("in etwa 15 Minuten")
    await ask(page, "Wie lange habe ich Garantie auf die Maschine?")
    await expect(page.locator(BOT, has_text="Während du wartest:")).to_have_count(1)
    await expect(page.locator(BOT, has_text="Während du wartest:")).to_contain_text("Garantie")
    await ask(page, "stopp")
    await expect(page.locator(BOT).last).to_contain_text("Du bekommst keine Werbenachrichten")


async def test_none_of_these_leads_to_a_person(new_page: NewPage, server: str) -> None:
    page = await new_page(locale="en-GB")
    await open_chat(page, server)
    await ask(page, "Can you grind beans for a cezve and print our logo on the bags?")
    await expect(page.locator(BOT).last).to_contain_text("Did you mean one of these?")
    await page.locator(f"{W} button.quick", has_text="None of these").click()
    await expect(page.locator(BOT).last).to_contain_text("talk to a person from our team")
    # the offer's own button (the clarify message offered a person too)
    await page.locator(f"{W} button.quick", has_text="Talk to a person").last.click()
    await expect(page.locator(BOT).last).to_contain_text("I've asked a person from our team")


async def test_keyboard_only_through_a_quick_reply(new_page: NewPage, server: str) -> None:
    page = await new_page(locale="en-GB")
    await page.goto(server)
    launcher = page.locator(f"{W} .launcher")
    focused = "e => e.getRootNode().activeElement === e"
    for _ in range(30):  # Tab through the shop page until the launcher has focus
        await page.keyboard.press("Tab")
        if await launcher.evaluate(focused):
            break
    else:
        raise AssertionError("Tab never reached the chat launcher")
    await page.keyboard.press("Enter")
    box = page.locator(f"{W} textarea")
    await expect(box).to_be_focused()
    await expect(page.locator(f"{GREETING} button.quick")).to_have_count(3)
    await page.keyboard.press("Shift+Tab")  # back from the text box: the last suggestion
    last = page.locator(f"{GREETING} button.quick").last
    await expect(last).to_be_focused()
    await expect(last).to_have_text("Support hours")
    await page.keyboard.press("Enter")
    await expect(page.locator(BOT, has_text="Monday–Sunday 00:00–23:59")).to_have_count(1)
    # the pressed button is spent, and the focus stayed in the chat, on the text box
    await expect(last).to_be_disabled()
    await expect(box).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator(f"{W} .panel")).to_be_hidden()
    await expect(launcher).to_be_focused()


async def test_screen_reader_labels_and_no_serious_axe_violations(
    new_page: NewPage, server: str
) -> None:
    page = await new_page(locale="en-GB")
    await open_chat(page, server)
    await expect(page.locator(GREETING)).to_be_visible()
    await ask(page, "How long is the warranty?")
    await expect(page.locator(f"{W} li.from-bot:not(.greeting) button.quick").first).to_be_visible()
    # who said what, and what the buttons are, without seeing them
    await expect(page.locator(f"{W} li.from-user .sr-only")).to_have_text(["You: "])
    await expect(page.locator(f"{GREETING} .sr-only")).to_have_text("Assistant: ")
    await expect(page.locator(f"{GREETING} [role=group]")).to_have_attribute(
        "aria-label", "Suggested replies"
    )
    await expect(page.locator(f"{W} .launcher")).to_have_attribute("aria-label", "Open chat")
    await expect(page.locator(f"{W} .close")).to_have_attribute("aria-label", "Close chat")

    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate(
        """async () => await axe.run({include: [["#concierge-widget"]]}, {
             runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                             "best-practice"]}})"""
    )
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], serious
    assert len(result["passes"]) > 10  # axe looked inside the widget's shadow root
