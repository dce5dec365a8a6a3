"""The FAQ-gap loop in real Chromium against the whole product (its own copy of the demo
content): a question the assistant cannot answer over the REST chat shows up as a gap; staff
add it as an example of an intent; the content file gains that line, the model retrains in the
background, the page shows the accuracy before and after, and the same question now gets the
topic's answer over the REST chat."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from bot.settings import Settings
from tests.browser.conftest import NewPage
from tests.conftest import LiveServer

REPO = Path(__file__).resolve().parents[2]
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
QUESTION = "do you have a loyalty program"


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(REPO / "nlu_data", root / "nlu_data")
    shutil.copytree(REPO / "flows", root / "flows")
    shutil.copy(REPO / "shop.yml", root / "shop.yml")
    return root


@pytest.fixture
def server(
    sqlite_url: str,
    content: Path,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    return start_server(make_settings(sqlite_url, admin_password="pw-123", content_dir=content))


def ask(url: str, sender: str, text: str) -> list[dict[str, Any]]:
    r = httpx.post(
        f"{url}/webhooks/rest/webhook",
        json={"sender": sender, "message": text, "metadata": {"language": "en"}},
        timeout=30,
    )
    r.raise_for_status()
    replies: list[dict[str, Any]] = r.json()
    return replies


async def test_an_added_example_changes_the_answer(
    new_page: NewPage, server: LiveServer, content: Path
) -> None:
    gift_cards = "gift card"
    before = ask(server.url, "visitor-1", QUESTION)
    assert not any(gift_cards in (m.get("text") or "").lower() for m in before), before
    ask(server.url, "visitor-2", "Do you have a loyalty program?")

    page = await new_page()
    await page.goto(f"{server.url}/admin/gaps")
    await page.fill("#name", "Owner")
    await page.fill("#password", "pw-123")
    await page.click("button[type=submit]")
    await page.goto(f"{server.url}/admin/gaps")
    cluster = page.locator("section.cluster", has_text=QUESTION).first
    await expect(cluster.locator(".count")).to_have_text("2×")

    # keyboard only: choose the intent and send
    await cluster.locator("select[name=intent]").focus()
    await cluster.locator("select[name=intent]").select_option("faq/gift_cards")
    await cluster.locator("button[type=submit]").focus()
    await page.keyboard.press("Enter")
    status = page.locator("#status-text")
    await expect(status).to_contain_text("Training the model")
    await expect(status).to_contain_text("The new model is answering", timeout=120_000)
    await expect(page.locator("#answered")).to_have_text("0 of 2 before, 2 of 2 after")
    before_acc = await page.locator("#acc-before").text_content()
    after_acc = await page.locator("#acc-after").text_content()
    assert before_acc and after_acc and before_acc.endswith("%") and after_acc.endswith("%")

    nlu = (content / "nlu_data" / "en" / "nlu.yml").read_text()
    assert f"    - {QUESTION}\n" in nlu

    after = ask(server.url, "visitor-3", QUESTION)
    assert any(gift_cards in (m.get("text") or "").lower() for m in after), after

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


def test_gap_changes_need_login_csrf_and_valid_input(server: LiveServer, content: Path) -> None:
    import re

    assert httpx.post(f"{server.url}/admin/gaps/add").status_code == 401
    with httpx.Client(base_url=server.url) as c:
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/admin/login").text)
        assert csrf
        c.post("/admin/login", data={"name": "x", "password": "pw-123", "csrf": csrf[1]})
        page = c.get("/admin/gaps").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token
        form = {"lang": "en", "mode": "example", "intent": "faq/shipping", "text": "hi there"}
        assert c.post("/admin/gaps/add", data={**form, "csrf": "forged"}).status_code == 403
        r = c.post("/admin/gaps/add", data={**form, "csrf": token[1], "intent": "faq/nothing"})
        assert r.status_code == 400 and "no intent &#39;faq/nothing&#39;" in r.text
        r = c.post("/admin/gaps/add", data={**form, "csrf": token[1], "lang": "xx"})
        assert r.status_code == 400 and "not served" in r.text
    assert "hi there" not in (content / "nlu_data" / "en" / "nlu.yml").read_text()
