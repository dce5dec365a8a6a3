"""The opening message and stage variants of responses (issue 23): engine level with the demo
content, then the widget's WebSocket against the whole product."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import select, update
from typer.testing import CliRunner

from bot.greeting import greetings_of
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.models import Contact
from bot.types import Inbound
from channels.cli import app
from channels.web.events import signature
from channels.web.identity import user_hash
from tests.conftest import REPO, LiveServer

TUTORIAL = '/flow_start{"link": "tutorial"}'


@pytest.fixture
async def rt(db_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Runtime]:
    r = Runtime(make_settings(db_url), start_worker=False)
    await r.start(migrate=False)
    yield r
    await r.stop()


async def customer(rt: Runtime, who: str, stage: str) -> int:
    """A shop customer (identified by the shop's user id) in a lifecycle stage."""
    res = await rt.engine.handle(Inbound(channel="web", external_id=who, text="hi", language="en"))
    assert res.contact_id is not None
    async with rt.db.session() as s:
        await s.execute(
            update(Contact)
            .where(Contact.id == res.contact_id)
            .values(user_id=f"shop-{who}", lifecycle_stage=stage)
        )
    return res.contact_id


async def greeting(rt: Runtime, contact_id: int, language: str = "en") -> Any:
    async with rt.db.session() as s:
        contact = (await s.execute(select(Contact).where(Contact.id == contact_id))).scalar_one()
        return await greetings_of(rt).for_contact(s, contact, language)


async def test_onboarding_customer_gets_the_onboarding_greeting_and_variant(rt: Runtime) -> None:
    cid = await customer(rt, "new-buyer", "onboarding")
    hello = await greeting(rt, cid)
    assert hello.text.startswith("Welcome to Brewhaus! Your machine is here")
    assert [(b.title, b.payload) for b in hello.buttons] == [("Start the tutorial", TUTORIAL)]
    # any response may have a stage variant: "hello" answers the onboarding one
    res = await rt.engine.handle(
        Inbound(channel="web", external_id="new-buyer", text="hello", language="en")
    )
    assert res.replies[0].text.startswith("Hi! How is your new machine doing?")
    assert res.replies[0].buttons[0].payload == TUTORIAL
    # an open tutorial comes first: the greeting offers to go on with it
    await rt.engine.handle(
        Inbound(channel="web", external_id="new-buyer", text="Start", payload=TUTORIAL)
    )
    again = await greeting(rt, cid)
    assert "go on with" in again.text and again.buttons[0].payload.startswith("/flow_continue")


@pytest.mark.parametrize(
    ("stage", "start"),
    [
        ("retention", "Good to see you again, and thank you for being a regular"),
        ("churned", "Welcome back, we've missed you"),
        ("awareness", "Hi! I'm the Brewhaus assistant"),
    ],
)
async def test_stage_picks_the_greeting(rt: Runtime, stage: str, start: str) -> None:
    cid = await customer(rt, f"c-{stage}", stage)
    assert (await greeting(rt, cid)).text.startswith(start)
    # the plain "hello" for everyone but onboarding
    res = await rt.engine.handle(
        Inbound(channel="web", external_id=f"c-{stage}", text="hello", language="en")
    )
    assert res.replies[0].text.startswith("Hi! I'm the Brewhaus assistant. Ask me about")


async def recv(ws: Any, kind: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        while True:
            f = json.loads(await ws.recv())
            if f["type"] == kind:
                return dict(f)

    return await asyncio.wait_for(go(), 15)


async def test_widget_session_carries_the_greeting_in_the_visitors_language(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> None:
    server = start_server(
        make_settings(db_url, web_identity_secret="shop-secret", events_secret="ev")
    )
    url = f"ws://127.0.0.1:{server.port}/ws/chat"
    async with websockets.connect(f"{url}?lang=de-AT") as ws:
        session = await recv(ws, "session")
        hello = session["greeting"]
        assert hello["text"].startswith("Hallo! Ich bin der Brewhaus-Assistent")
        assert [b["title"] for b in hello["buttons"]] == ["Versand", "Rückgabe", "Servicezeiten"]
        # a suggestion asks its question
        shipping = hello["buttons"][0]
        await ws.send(
            json.dumps({"type": "button", "payload": shipping["payload"], "title": "Versand"})
        )
        while True:
            f = await recv(ws, "message")
            if f["sender"] == "bot":
                break
        assert "EU" in f["text"]
    # once the chat has history, no greeting
    async with websockets.connect(f"{url}?lang=de&token={session['token']}") as ws:
        assert (await recv(ws, "session"))["greeting"] is None

    # a regular, identified by the shop, is thanked (stage from the shop's events)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for i, kind in enumerate(("purchased", "subscription_started")):
        body = json.dumps(
            {"id": f"e{i}", "type": kind, "user_id": "cust-7", "occurred_at": now, "properties": {}}
        ).encode()
        r = httpx.post(
            f"{server.url}/api/v1/events",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Concierge-Signature": signature("ev", body),
            },
            timeout=30,
        )
        assert r.status_code in (200, 202), r.text
    good = user_hash("shop-secret", "cust-7")
    async with websockets.connect(f"{url}?lang=en&user_id=cust-7&user_hash={good}") as ws:
        hello = (await recv(ws, "session"))["greeting"]
        assert hello["text"].startswith("Good to see you again, and thank you for being a regular")


def test_data_validate_names_a_condition_on_an_unknown_stage(tmp_path: Path) -> None:
    content = tmp_path / "shop"
    shutil.copytree(REPO / "nlu_data", content / "nlu_data")
    shutil.copytree(REPO / "flows", content / "flows")
    f = content / "nlu_data" / "en" / "responses.yml"
    text = f.read_text(encoding="utf-8")
    assert "value: onboarding}]" in text
    f.write_text(text.replace("value: onboarding}]", "value: onbording}]", 1), encoding="utf-8")
    line = next(
        i for i, x in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if "onbording" in x
    )
    got = CliRunner().invoke(app, ["data", "validate", "--content", str(content)])
    assert got.exit_code == 1
    assert f"{f}:{line}: error: utter_greet: unknown stage 'onbording'" in got.output, got.output
