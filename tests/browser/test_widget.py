"""The chat widget in a real browser, against the live product (SQLite, demo content).

Some tests watch the widget's WebSocket through Playwright's ``route_web_socket``: the page
still talks to the real server; the test can drop the connection, hold frames back, or answer
a frame itself to bring about a situation the demo content cannot (a staff message, an error).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.conftest import NewPage

W = "#concierge-widget"
BOT = f"{W} li.from-bot:not(.greeting) .bubble"  # answers, not the opening greeting
USER = f"{W} li.from-user"
STATUS = f"{W} .status"


async def open_chat(page: Page, url: str) -> None:
    await page.goto(url)
    await page.locator(f"{W} .launcher").click()
    await expect(page.locator(f"{W} textarea")).to_be_focused()


async def ask(page: Page, text: str) -> None:
    box = page.locator(f"{W} textarea")
    await box.fill(text)
    await box.press("Enter")


Frame = dict[str, Any]


class Wire:
    """The widget's socket, routed through the test: a real connection to the real server."""

    def __init__(self) -> None:
        self.routes: list[Any] = []
        self.seen: list[Frame] = []  # every server -> page frame, in order
        self.refuse = False
        self.refused = 0
        self.to_page: Callable[[Frame], Frame | None] = lambda f: f
        self.to_server: Callable[[Frame, Any], Frame | None] = lambda f, route: f

    async def attach(self, page: Page) -> Wire:
        await page.route_web_socket(re.compile(r".*/ws/chat.*"), self._route)
        return self

    async def _route(self, route: Any) -> None:
        if self.refuse:  # the chat server cannot be reached
            self.refused += 1
            await route.close(code=1011, reason="unreachable")
            return
        server = route.connect_to_server()
        self.routes.append(route)

        def down(msg: str | bytes) -> None:
            frame = json.loads(msg)
            self.seen.append(frame)
            out = self.to_page(frame)
            if out is not None:
                route.send(json.dumps(out))

        def up(msg: str | bytes) -> None:
            out = self.to_server(json.loads(msg), route)
            if out is not None:
                server.send(json.dumps(out))

        server.on_message(down)
        route.on_message(up)

    async def wait_for(self, pred: Callable[[Frame], bool], timeout: float = 15) -> Frame:
        async def find() -> Frame:
            while True:
                for f in self.seen:
                    if pred(f):
                        return f
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(find(), timeout)

    def inject(self, frame: Frame) -> None:
        """A frame to the page as if the server had sent it."""
        self.routes[-1].send(json.dumps(frame))


async def test_visitor_says_hello_gets_an_answer_and_finds_it_after_reload(
    new_page: NewPage, live_server: str
) -> None:
    page = await new_page(viewport={"width": 1280, "height": 800})
    await open_chat(page, live_server)
    await ask(page, "hello")
    await expect(page.locator(BOT).first).to_contain_text("Brewhaus")
    await expect(page.locator(USER)).to_have_attribute("data-state", "sent")
    await ask(page, "How long is the warranty?")
    await expect(page.locator(f"{W} .buttons button.quick").first).to_be_visible()
    await page.locator(f"{W} textarea").fill("Do you ship to Austria?")
    await page.screenshot(path="/tmp/widget.png")
    bot_texts = await page.locator(BOT).all_text_contents()

    await page.reload()
    await page.locator(f"{W} .launcher").click()
    await expect(page.locator(f"{USER} .bubble")).to_have_text(
        ["hello", "How long is the warranty?"]
    )
    await expect(page.locator(BOT)).to_have_text(bot_texts)
    await expect(page.locator(STATUS)).to_have_text("")


async def test_html_from_the_visitor_is_shown_as_text_and_never_runs(
    new_page: NewPage, live_server: str
) -> None:
    page = await new_page()
    await open_chat(page, live_server)
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    await ask(page, payload)
    await expect(page.locator(BOT).first).to_be_visible()
    await page.reload()  # the history is a second way in
    await page.locator(f"{W} .launcher").click()
    await expect(page.locator(f"{USER} .bubble")).to_have_text(payload)
    assert await page.locator(f"{W} img, {W} li script").count() == 0
    assert await page.evaluate("window.__xss") is None


async def test_staff_message_is_labelled_and_its_markup_stays_text(
    new_page: NewPage, live_server: str
) -> None:
    page = await new_page()
    wire = await Wire().attach(page)
    await open_chat(page, live_server)
    await wire.wait_for(lambda f: f["type"] == "history")
    wire.inject(
        {
            "type": "message",
            "id": 10**9,
            "sender": "staff",
            "text": 'Hi! <img src=x onerror="window.__xss=1">See https://example.com/help. <b>Bye</b>',
            "buttons": [
                {"title": "<b>Track</b>", "payload": "/track", "url": "javascript:window.__xss=2"},
                {"title": "Help page", "payload": "/help", "url": "https://example.com/help"},
            ],
            "ts": "2026-01-05T10:00:00+00:00",
            "metadata": {"staff_name": '<i onclick="window.__xss=3">Anna</i>'},
        }
    )
    wire.inject({"type": "message", "id": 10**9 + 1, "sender": "staff", "text": "Still there?"})
    staff = page.locator(f"{W} li.from-staff")
    await expect(staff.locator(".who")).to_have_text(
        ['<i onclick="window.__xss=3">Anna</i>', "Team"]
    )
    await expect(staff.first.locator(".bubble")).to_have_text(
        'Hi! <img src=x onerror="window.__xss=1">See https://example.com/help. <b>Bye</b>'
    )
    link = staff.first.locator(".bubble a")
    await expect(link).to_have_attribute("href", "https://example.com/help")
    # a javascript: URL never becomes a link: the button sends its payload instead
    await expect(staff.first.locator("button.quick")).to_have_text("<b>Track</b>")
    await expect(staff.first.locator("a.quick")).to_have_attribute(
        "href", "https://example.com/help"
    )
    await expect(staff.first.locator("a.quick")).to_have_attribute("target", "_blank")
    await staff.first.locator(".who").click()
    assert await page.locator(f"{W} img, {W} b, {W} i, {W} [href^=javascript]").count() == 0
    assert await page.evaluate("window.__xss") is None


async def test_quick_reply_button_sends_its_payload(new_page: NewPage, live_server: str) -> None:
    page = await new_page()
    await open_chat(page, live_server)
    await ask(page, "How long is the warranty?")
    yes = page.locator(f"{W} li.from-bot:not(.greeting) .buttons button.quick").first
    await expect(yes).to_be_visible()
    title = await yes.text_content()
    await yes.click()
    await expect(page.locator(BOT).last).to_have_text("Thanks for letting me know!")
    await expect(page.locator(f"{USER} .bubble").last).to_have_text(title or "")
    await expect(yes).to_be_disabled()  # answered: no second click on an old question


async def test_keyboard_only(new_page: NewPage, live_server: str) -> None:
    page = await new_page()
    await page.goto(live_server)
    launcher = page.locator(f"{W} .launcher")
    focused = "e => e.getRootNode().activeElement === e && document.activeElement.id === 'concierge-widget'"
    for _ in range(30):  # Tab through the shop page until the launcher has focus
        await page.keyboard.press("Tab")
        if await launcher.evaluate(focused):
            break
    else:
        raise AssertionError("Tab never reached the chat launcher")
    await page.keyboard.press("Enter")
    box = page.locator(f"{W} textarea")
    await expect(box).to_be_focused()
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    await page.keyboard.press("Tab")
    await expect(page.locator(f"{W} button.send")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await expect(box).to_be_focused()

    await page.keyboard.type("hello")
    await page.keyboard.press("Shift+Enter")  # a new line, not a send
    await page.keyboard.type("there")
    assert await box.input_value() == "hello\nthere"
    await expect(page.locator(USER)).to_have_count(0)
    await page.keyboard.press("Enter")
    bubble = page.locator(f"{USER} .bubble")
    await expect(bubble).to_have_count(1)
    assert await bubble.evaluate("e => e.textContent") == "hello\nthere"
    await expect(page.locator(BOT).first).to_be_visible()

    await page.keyboard.press("Escape")
    await expect(page.locator(f"{W} .panel")).to_be_hidden()
    await expect(launcher).to_be_focused()
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    await expect(page.locator(f"{W} .messages")).to_have_attribute("aria-live", "polite")


async def test_phone_screen_panel_fills_the_viewport(new_page: NewPage, live_server: str) -> None:
    page = await new_page(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    await open_chat(page, live_server)
    box = await page.locator(f"{W} .panel").bounding_box()
    assert box == {"x": 0, "y": 0, "width": 375, "height": 667}
    await expect(page.locator(f"{W} .launcher")).to_be_hidden()
    await ask(page, "hello")
    await expect(page.locator(BOT).first).to_be_visible()
    await ask(page, "How long is the warranty?")
    await expect(page.locator(f"{W} .buttons button.quick").first).to_be_visible()
    await page.screenshot(path="/tmp/widget-phone.png")
    # full screen is modal: Tab from the last control comes back to the first
    await page.locator(f"{W} button.send").focus()
    await page.keyboard.press("Tab")
    await expect(page.locator(f"{W} button.close")).to_be_focused()
    await page.locator(f"{W} button.close").click()
    await expect(page.locator(f"{W} .launcher")).to_be_visible()


async def test_connection_lost_message_typed_meanwhile_arrives_once(
    new_page: NewPage, live_server: str
) -> None:
    page = await new_page()
    wire = await Wire().attach(page)
    await open_chat(page, live_server)
    await ask(page, "hello")
    await expect(page.locator(BOT)).to_have_count(1)
    wire.refuse = True
    await wire.routes[-1].close(code=1006, reason="network lost")  # the connection drops
    await expect(page.locator(STATUS)).to_have_text("Reconnecting…")
    await ask(page, "Can I pay with PayPal?")  # typed while the server is unreachable: queued
    paypal = page.locator(USER, has_text="PayPal")
    await expect(paypal).to_have_attribute("data-state", "sending")
    await page.reload()  # even a reload meanwhile does not lose it
    await page.locator(f"{W} .launcher").click()
    await expect(paypal).to_have_attribute("data-state", "sending")
    await expect(page.locator(STATUS)).to_have_text("Reconnecting…")
    assert wire.refused >= 1
    wire.refuse = False
    await expect(page.locator(BOT, has_text="PayPal")).to_have_count(1, timeout=20000)
    await expect(paypal).to_have_count(1)
    await expect(paypal).to_have_attribute("data-state", "sent")
    await expect(page.locator(STATUS)).to_have_text("")
    # after a reload the server's history has it once, answered once
    await page.reload()
    await page.locator(f"{W} .launcher").click()
    await expect(page.locator(f"{USER} .bubble")).to_have_text(["hello", "Can I pay with PayPal?"])
    await expect(page.locator(BOT, has_text="PayPal")).to_have_count(1)


async def test_offline_message_is_sent_once_when_the_network_is_back(
    new_page: NewPage, live_server: str
) -> None:
    page = await new_page()
    await open_chat(page, live_server)
    await ask(page, "hello")
    await expect(page.locator(BOT)).to_have_count(1)
    await page.context.set_offline(True)
    await expect(page.locator(STATUS)).to_have_text("Reconnecting…")
    await ask(page, "Can I pay with PayPal?")
    paypal = page.locator(USER, has_text="PayPal")
    await expect(paypal).to_have_attribute("data-state", "sending")
    await page.wait_for_timeout(300)
    await expect(page.locator(BOT)).to_have_count(1)  # nothing went out
    await page.context.set_offline(False)
    await expect(page.locator(BOT, has_text="PayPal")).to_have_count(1, timeout=15000)
    await expect(paypal).to_have_count(1)
    await expect(paypal).to_have_attribute("data-state", "sent")
    await expect(page.locator(STATUS)).to_have_text("")
    await page.reload()
    await page.locator(f"{W} .launcher").click()
    await expect(page.locator(f"{USER} .bubble")).to_have_text(["hello", "Can I pay with PayPal?"])
    await expect(page.locator(BOT, has_text="PayPal")).to_have_count(1)


async def test_typing_then_unread_badge_while_closed(new_page: NewPage, live_server: str) -> None:
    page = await new_page()
    wire = await Wire().attach(page)
    held: list[Frame] = []
    hold = True

    def to_page(f: Frame) -> Frame | None:  # the answer waits until the test lets it go
        if hold and f["type"] in ("message", "ack", "typing") and f.get("on") is not True:
            if f.get("sender") != "user":
                held.append(f)
                return None
        return f

    wire.to_page = to_page
    await open_chat(page, live_server)
    await ask(page, "hello")
    await expect(page.locator(f"{W} .typing")).to_be_visible()
    await wire.wait_for(lambda f: f["type"] == "ack")
    await wire.wait_for(lambda f: f["type"] == "message" and f["sender"] == "bot")
    await page.keyboard.press("Escape")
    hold = False
    for f in held:
        wire.inject(f)
    # what arrives from now on comes in live, to a closed panel: every answer counts
    await page.wait_for_timeout(300)
    answers = sum(1 for f in wire.seen if f["type"] == "message" and f["sender"] == "bot")
    launcher = page.locator(f"{W} .launcher")
    badge = page.locator(f"{W} .badge")
    await expect(badge).to_have_text(str(answers))
    await expect(launcher).to_have_attribute("aria-label", f"Open chat ({answers} unread)")
    await page.reload()  # still unread on the next page
    await expect(badge).to_have_text(str(answers))
    await launcher.click()
    await expect(badge).to_be_hidden()
    await expect(page.locator(f"{W} .typing")).to_be_hidden()
    await page.reload()
    await expect(page.locator(f"{W} .launcher")).to_have_attribute("aria-label", "Open chat")
    await expect(badge).to_be_hidden()


async def test_size_limit_from_the_server_and_a_refused_message_can_be_sent_again(
    new_page: NewPage, live_server: str
) -> None:
    page = await new_page()
    wire = await Wire().attach(page)
    refused: list[str] = []

    def to_page(f: Frame) -> Frame:
        if f["type"] == "session":
            f["max_message_bytes"] = 100
        return f

    def to_server(f: Frame, route: Any) -> Frame | None:
        if f.get("text") == "Can I pay with PayPal?" and not refused:
            refused.append(f["client_id"])
            route.send(
                json.dumps(
                    {
                        "type": "error",
                        "code": "rate_limited",
                        "message": "too many messages; wait a moment",
                        "client_id": f["client_id"],
                    }
                )
            )
            return None
        return f

    wire.to_page, wire.to_server = to_page, to_server
    await open_chat(page, live_server)
    await wire.wait_for(lambda f: f["type"] == "history")
    box = page.locator(f"{W} textarea")
    send = page.locator(f"{W} button.send")
    await box.fill("é" * 60)  # 60 characters, 120 bytes
    await expect(page.locator(f"{W} .counter")).to_have_text("120 / 100")
    await expect(send).to_be_disabled()
    await expect(box).to_have_attribute("aria-invalid", "true")
    await box.press("Enter")
    await expect(page.locator(USER)).to_have_count(0)
    await box.fill("é" * 40)
    await expect(page.locator(f"{W} .counter")).to_have_text("")
    await expect(send).to_be_enabled()

    await ask(page, "Can I pay with PayPal?")
    paypal = page.locator(USER, has_text="PayPal")
    await expect(paypal).to_have_attribute("data-state", "failed")
    await expect(paypal.locator(".failure")).to_contain_text("too many messages")
    await paypal.locator("button.retry").click()
    await expect(page.locator(BOT, has_text="PayPal")).to_have_count(1)
    await expect(paypal).to_have_count(1)
    await expect(paypal).to_have_attribute("data-state", "sent")
    assert refused


async def test_the_next_person_at_a_shared_computer_sees_and_sends_nothing_of_the_last(
    new_page: NewPage,
    sqlite_url: str,
    make_settings: Callable[..., Any],
    start_server: Callable[..., Any],
) -> None:
    """A customer chats logged in, leaves a message unsent, and logs out; the next page in
    the same browser (anonymous) starts a new session: none of their conversation shows, and
    their unsent message is not sent under the new visitor."""
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from channels.web.identity import user_hash

    async def shop(request: Request) -> HTMLResponse:
        base = str(request.base_url).rstrip("/")
        user = request.query_params.get("user")
        ident = (
            f' data-user-id="{user}" data-user-hash="{user_hash("shop-secret", user)}"'
            if user
            else ""
        )
        return HTMLResponse(
            f'<!doctype html><html lang="en"><title>Shop</title><h1>Shop</h1>'
            f'<script src="{base}/widget.js" data-concierge-url="{base}"{ident} defer></script>'
        )

    server = start_server(
        make_settings(sqlite_url, web_identity_secret="shop-secret"),
        route_factories=[lambda runtime: [Route("/shop", shop)]],
    )
    page = await new_page()
    await open_chat(page, f"{server.url}/shop?user=cust-42")
    await ask(page, "My card ends in 4242, where is my order?")
    await expect(page.locator(BOT).first).to_be_visible()
    await expect(page.locator(USER)).to_have_attribute("data-state", "sent")
    # a message the customer typed while the connection was down, still waiting in the browser
    await page.evaluate(
        """localStorage.setItem("concierge.pending", JSON.stringify(
            [{type: "message", text: "unsent: my address is 1 Secret St", client_id: "p-1"}]))"""
    )
    await open_chat(page, f"{server.url}/shop")  # logged out: the shop page identifies nobody
    await expect(page.locator(STATUS)).to_have_text("")
    await ask(page, "hello")
    await expect(page.locator(BOT).first).to_be_visible()
    texts = await page.locator(f"{W} li .bubble").all_text_contents()
    assert not any("4242" in t or "Secret St" in t for t in texts), texts
    assert await page.evaluate("localStorage.getItem('concierge.user')") == ""


async def test_the_widget_speaks_the_visitors_language_or_the_shops_default(
    new_page: NewPage,
    sqlite_url: str,
    make_settings: Callable[..., Any],
    start_server: Callable[..., Any],
) -> None:
    """Labels come from the server for each served language; a language the shop does not
    serve gets the default language's (and the panel says which language it is in)."""
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def shop(request: Request) -> HTMLResponse:
        base = str(request.base_url).rstrip("/")
        lang = request.query_params["lang"]
        return HTMLResponse(
            f'<!doctype html><html lang="{lang}"><title>Shop</title><h1>Shop</h1>'
            f'<script src="{base}/widget.js" data-concierge-url="{base}" data-lang="{lang}" defer>'
            "</script>"
        )

    server = start_server(
        make_settings(sqlite_url), route_factories=[lambda runtime: [Route("/shop", shop)]]
    )
    page = await new_page()
    for lang, launcher, title, tag in (
        ("de", "Chat öffnen", "Chatte mit uns", "de"),
        ("pl", "Otwórz czat", "Napisz do nas", "pl"),
        ("fr", "Open chat", "Chat with us", "en"),
    ):
        await page.goto(f"{server.url}/shop?lang={lang}")
        await expect(page.locator(f"{W} .launcher")).to_have_attribute("aria-label", launcher)
        await page.locator(f"{W} .launcher").click()
        await expect(page.locator(f"{W} .panel")).to_have_attribute("lang", tag)
        await expect(page.locator(f"{W} #title")).to_have_text(title)
