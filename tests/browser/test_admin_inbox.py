"""The staff web inbox in a real browser: login, live transcript, reply reaching the visitor."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from playwright.async_api import expect

from bot.settings import Settings
from tests.conftest import LiveServer


@pytest.fixture
def server(
    sqlite_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> LiveServer:
    return start_server(
        make_settings(sqlite_url, admin_password="pw-123", handoff_hours="mon-sun 00:00-23:59")
    )


async def frames_until(ws: Any, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        while True:
            f = json.loads(await ws.recv())
            if pred(f):
                return f

    return await asyncio.wait_for(go(), 15)


async def test_staff_answer_from_the_inbox_reaches_the_visitor_live(
    browser: Any, server: LiveServer
) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/chat") as ws:
        await frames_until(ws, lambda f: f["type"] == "history")
        await ws.send(
            json.dumps({"type": "message", "text": "I want to talk to a human", "client_id": "a"})
        )
        await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
        await ws.send(
            json.dumps({"type": "message", "text": "<b>bold?</b> order 42", "client_id": "b"})
        )

        page = await (await browser.new_context()).new_page()
        await page.goto(f"{server.url}/admin/inbox")
        await expect(page).to_have_url(f"{server.url}/admin/login")
        await page.fill("#name", "Anna")
        await page.fill("#password", "wrong")
        await page.click("button[type=submit]")
        await expect(page.locator(".error")).to_have_text("Wrong password.")
        await page.fill("#name", "Anna")
        await page.fill("#password", "pw-123")
        await page.click("button[type=submit]")
        await page.locator("#items li a").first.click()
        transcript = page.locator("#transcript")
        # the customer's HTML is text, and their later message arrives (polling)
        await expect(
            transcript.locator("li.customer", has_text="<b>bold?</b> order 42")
        ).to_have_count(1)
        assert await transcript.locator("b").count() == 0
        # nobody has taken it yet: the bot still answered it (issue 23), and staff see that too
        answered = re.compile("passed that on|While you wait")
        await expect(transcript.locator("li.bot", has_text=answered)).to_have_count(1)

        await page.fill("form.reply textarea", "// internal: check order 42")
        await page.click("form.reply button")
        await expect(transcript.locator("li.internal")).to_have_count(1)
        await page.fill("form.reply textarea", "Your order 42 ships today.")
        await page.click("form.reply button")
        f = await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "staff")
        assert f["text"] == "Your order 42 ships today."
        assert f["metadata"]["staff_name"] == "Anna"

        await page.locator("button", has_text="Resolve").click()
        f = await frames_until(ws, lambda f: f["type"] == "message" and f.get("buttons"))
        assert [b["title"] for b in f["buttons"]] == ["1", "2", "3", "4", "5"]


def test_admin_needs_login_and_csrf(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/admin/inbox", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert httpx.post(f"{server.url}/admin/inbox/1/resolve").status_code == 401
    with httpx.Client(base_url=server.url) as c:
        # the login form carries a CSRF token of its own
        assert c.post("/admin/login", data={"name": "x", "password": "pw-123"}).status_code == 403
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/admin/login").text)
        assert csrf
        r = c.post("/admin/login", data={"name": "x", "password": "pw-123", "csrf": csrf[1]})
        assert r.status_code == 303
        r = c.post("/admin/inbox/1/resolve", data={"csrf": "forged"})
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
