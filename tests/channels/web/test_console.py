"""The staff console over real HTTP against the live app (``channels.app`` + Runtime):
first-start setup, accounts and roles, the inbox's list, conversations, export and erase."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.settings import Settings
from bot.staff import StaffAction, setup_token
from bot.storage.db import Database
from bot.storage.models import Identity
from tests.conftest import LiveServer

PW = "correct horse battery"


@pytest.fixture
def server(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> LiveServer:
    return start_server(make_settings(db_url, handoff_hours="mon-sun 00:00-23:59"))


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def chat(server: LiveServer, sender: str, text: str) -> list[dict[str, Any]]:
    r = httpx.post(
        f"{server.url}/webhooks/rest/webhook",
        json={"sender": sender, "message": text},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return list(r.json())


def setup_owner(server: LiveServer, c: httpx.Client) -> None:
    link = f"/admin/setup?token={setup_token('test-secret')}"
    page = c.get(link)
    assert page.status_code == 200 and "Create the owner account" in page.text
    r = c.post(
        link,
        data={
            "csrf": csrf_of(page.text),
            "name": "Olga Owner",
            "email": "olga@shop.example",
            "password": PW,
            "password2": PW,
        },
    )
    assert r.status_code == 303, r.text
    assert "Olga Owner (owner)" in c.get("/admin/inbox").text


def invite(c: httpx.Client, name: str, email: str, role: str = "agent") -> str:
    csrf = csrf_of(c.get("/admin/staff").text)
    r = c.post(
        "/admin/staff/invite", data={"csrf": csrf, "name": name, "email": email, "role": role}
    )
    assert r.status_code == 200, r.text
    m = re.search(r'id="invite-link" readonly value="([^"]+)"', r.text)
    assert m
    return m.group(1).replace("&amp;", "&")


def accept(server: LiveServer, c: httpx.Client, link: str) -> None:
    page = c.get(link)
    assert page.status_code == 200, page.text
    r = c.post(link, data={"csrf": csrf_of(page.text), "password": PW, "password2": PW})
    assert r.status_code == 303, r.text


def test_first_start_setup_is_one_time_and_never_an_open_admin(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get("/admin/login")
        assert r.status_code == 503 and "setup link" in r.text
        assert c.get("/admin/inbox", follow_redirects=False).status_code == 303
        assert c.get("/admin/setup?token=made-up").status_code == 400
        setup_owner(server, c)
    with httpx.Client(base_url=server.url, timeout=30) as other:
        # the same kind of link again: the owner exists, the setup is closed
        assert other.get(f"/admin/setup?token={setup_token('test-secret')}").status_code == 410
        # the owner logs in with e-mail or name; a wrong password is refused
        page = other.get("/admin/login")
        assert page.status_code == 200
        bad = other.post(
            "/admin/login",
            data={"csrf": csrf_of(page.text), "name": "olga@shop.example", "password": "nope"},
        )
        assert bad.status_code == 401
        page = other.get("/admin/login")
        ok = other.post(
            "/admin/login",
            data={"csrf": csrf_of(page.text), "name": "OLGA@shop.example", "password": PW},
        )
        assert ok.status_code == 303


def test_agent_cannot_export_or_erase_and_every_post_checks_csrf(
    server: LiveServer, db_url: str
) -> None:
    chat(server, "visitor-1", "hello")
    cid = asyncio.run(contact_of(db_url, "rest", "visitor-1"))
    with (
        httpx.Client(base_url=server.url, timeout=30) as owner,
        httpx.Client(base_url=server.url, timeout=30) as agent,
    ):
        setup_owner(server, owner)
        link = invite(owner, "Alex Agent", "alex@shop.example")
        accept(server, agent, link)
        assert agent.get(link).status_code == 410  # an invitation works once
        assert "Alex Agent (agent)" in agent.get("/admin/inbox").text
        csrf = csrf_of(agent.get(f"/admin/contacts/{cid}").text)
        assert agent.get(f"/admin/contacts/{cid}/export.json").status_code == 403
        assert agent.post(f"/admin/contacts/{cid}/erase", data={"csrf": csrf}).status_code == 403
        assert "owner only" in agent.get(f"/admin/contacts/{cid}").text
        # the owner: no CSRF token, no erase
        r = owner.post(f"/admin/contacts/{cid}/erase", data={"csrf": "forged"})
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
        exported = owner.get(f"/admin/contacts/{cid}/export.json")
        assert exported.status_code == 200
        assert exported.json()["contact"]["id"] == cid
        assert any(m["text"] == "hello" for m in exported.json()["messages"])
        csrf = csrf_of(owner.get(f"/admin/contacts/{cid}").text)
        r = owner.post(f"/admin/contacts/{cid}/erase", data={"csrf": csrf})
        assert r.status_code == 200 and "erased" in r.text
        assert owner.get(f"/admin/contacts/{cid}").status_code == 404
        # a disabled agent is out at once
        staff = owner.get("/admin/staff").text
        m = re.search(r'action="/admin/staff/(\d+)/disable"', staff.split("Alex Agent", 1)[1])
        assert m
        r = owner.post(f"/admin/staff/{m[1]}/disable", data={"csrf": csrf_of(staff)})
        assert r.status_code == 303
        assert agent.get("/admin/inbox", follow_redirects=False).status_code == 303
    rows = asyncio.run(actions(db_url))
    assert ("erase", "Olga Owner", cid) in rows
    assert ("export", "Olga Owner", cid) in rows


async def contact_of(url: str, channel: str, external_id: str) -> int:
    db = Database(url)
    try:
        async with db.session() as s:
            return int(
                (
                    await s.execute(
                        select(Identity.contact_id).where(
                            Identity.channel == channel, Identity.external_id == external_id
                        )
                    )
                ).scalar_one()
            )
    finally:
        await db.dispose()


async def actions(url: str) -> list[tuple[str, str, int | None]]:
    db = Database(url)
    try:
        async with db.session() as s:
            rows = (await s.execute(select(StaffAction).order_by(StaffAction.id))).scalars()
            return [(a.action, a.staff_name, a.contact_id) for a in rows]
    finally:
        await db.dispose()


def test_inbox_filters_search_assign_and_attribution(server: LiveServer, db_url: str) -> None:
    chat(server, "cust-a", "I want to talk to a human")
    chat(server, "cust-a", "where is my parcel 5521?")
    chat(server, "cust-b", "I want to talk to a human")
    with (
        httpx.Client(base_url=server.url, timeout=30) as owner,
        httpx.Client(base_url=server.url, timeout=30) as agent,
    ):
        setup_owner(server, owner)
        accept(server, agent, invite(owner, "Alex Agent", "alex@shop.example"))

        def ids(c: httpx.Client, query: str) -> list[int]:
            r = c.get(f"/admin/inbox.json?{query}")
            assert r.status_code == 200
            return [i["id"] for i in r.json()["items"]]

        items = owner.get("/admin/inbox.json").json()["items"]
        assert len(items) == 2
        first = items[0]
        assert first["last_question"] == "where is my parcel 5521?"
        assert first["sla"] == "ok" and first["waiting_minutes"] == 0
        assert first["channel"] == "rest" and first["stage"]
        assert ids(owner, "q=parcel+5521") == [first["id"]]
        page = owner.get(f"/admin/inbox/{first['id']}")
        r = owner.post(
            f"/admin/inbox/{first['id']}/assign",
            data={"csrf": csrf_of(page.text), "assignee": "Alex Agent"},
        )
        assert r.status_code == 303
        assert ids(agent, "filter=mine") == [first["id"]]
        assert first["id"] not in ids(agent, "filter=unassigned")
        assert ids(owner, "filter=mine") == []
        page = agent.get(f"/admin/inbox/{first['id']}")
        assert "Assign to" in page.text and "Stage" in page.text  # the contact panel
        csrf = csrf_of(page.text)
        assert (
            agent.post(
                f"/admin/inbox/{first['id']}/note", data={"csrf": csrf, "text": "check 5521"}
            ).status_code
            == 303
        )
        assert (
            agent.post(
                f"/admin/inbox/{first['id']}/reply", data={"csrf": csrf, "text": "It ships today."}
            ).status_code
            == 303
        )
        msgs = agent.get(f"/admin/inbox/{first['id']}/messages.json").json()["messages"]
        assert [m["staff"] for m in msgs if m["who"] == "staff"] == ["Alex Agent", "Alex Agent"]
        assert [m["internal"] for m in msgs if m["who"] == "staff"] == [True, False]
        assert (
            agent.post(f"/admin/inbox/{first['id']}/resolve", data={"csrf": csrf}).status_code
            == 303
        )
        assert ids(agent, "filter=resolved") == [first["id"]]
        assert first["id"] not in ids(agent, "filter=open")
        assert len(ids(agent, "filter=all")) == 2
    rows = asyncio.run(actions(db_url))
    done = [(a, n) for a, n, _ in rows if a in ("assign", "note", "reply", "resolve")]
    assert done == [
        ("assign", "Olga Owner"),
        ("note", "Alex Agent"),
        ("reply", "Alex Agent"),
        ("resolve", "Alex Agent"),
    ]


def test_conversations_bot_only_ones_too_with_intent_and_outcome(server: LiveServer) -> None:
    chat(server, "faq-person", "what are your opening hours?")
    chat(server, "lost-person", "xqzv blorp frumious")
    chat(server, "human-person", "I want to talk to a human")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        setup_owner(server, c)

        def whos(query: str) -> str:
            r = c.get(f"/admin/conversations?{query}")
            assert r.status_code == 200
            return r.text.split('id="conversations"', 1)[1]

        everything = whos("")
        assert "rest:faq-person" in everything and "rest:lost-person" in everything
        assert "rest:faq-person" in whos("q=opening+hours")
        assert "rest:lost-person" not in whos("q=opening+hours")
        handed = whos("outcome=handed_off")
        assert "rest:human-person" in handed and "rest:faq-person" not in handed
        fallback = whos("outcome=fallback") + whos("outcome=clarified")
        assert "rest:lost-person" in fallback
        assert "rest:faq-person" in whos("outcome=answered")
        assert "rest:faq-person" in whos("channel=rest&language=en")
        m = re.search(r'href="/admin/conversations/(\d+)">rest:faq-person', everything)
        assert m
        page = c.get(f"/admin/conversations/{m[1]}").text
        assert re.search(r"intent faq/\w+ \(\d\.\d\d\)", page), page
        assert "answered" in page
        assert c.get("/admin/conversations/999999").status_code == 404


def test_contacts_search(server: LiveServer) -> None:
    chat(server, "findme-77", "hello")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        setup_owner(server, c)
        page = c.get("/admin/contacts?q=findme").text
        assert "rest:findme-77" in page
        assert "rest:findme-77" not in c.get("/admin/contacts?q=nobody-like-this").text


def test_rows_that_do_not_exist_answer_404(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        setup_owner(server, c)
        csrf = csrf_of(c.get("/admin/inbox").text)
        for path in ("/admin/contacts/999999/export.json", "/admin/inbox/999999/messages.json"):
            r = c.get(path)
            assert r.status_code == 404 and r.json()["error"].startswith("no such"), path
        for path in (
            "/admin/contacts/999999/erase",
            "/admin/staff/999999/disable",
            "/admin/contacts/0/erase",
        ):
            r = c.post(path, data={"csrf": csrf})
            assert r.status_code == 404 and r.json()["error"].startswith("no such"), path
        r = c.post("/admin/staff/999999/explode", data={"csrf": csrf})
        assert r.status_code == 400 and "unknown action" in r.json()["error"]


def test_dashboard_and_faq_gaps_are_console_pages_with_its_login_and_roles(
    server: LiveServer,
) -> None:
    with (
        httpx.Client(base_url=server.url, timeout=30) as owner,
        httpx.Client(base_url=server.url, timeout=30) as agent,
        httpx.Client(base_url=server.url, timeout=30) as nobody,
    ):
        # no session: pages go to the login, JSON and POSTs are refused
        for path in ("/admin/dashboard", "/admin/gaps"):
            r = nobody.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/admin/login"
        assert nobody.get("/admin/gaps/status.json").status_code == 401
        assert nobody.get("/admin/stats/outcomes.json").status_code == 401
        assert nobody.post("/admin/gaps/add", data={"csrf": "x"}).status_code == 401
        setup_owner(server, owner)
        accept(server, agent, invite(owner, "Alex Agent", "alex@shop.example"))
        # an agent reads both pages, in the console's frame (its nav, its name, its role)
        for path, current in (("/admin/dashboard", "Dashboard"), ("/admin/gaps", "FAQ gaps")):
            page = agent.get(path)
            assert page.status_code == 200
            assert f'aria-current="page">{current}</a>' in page.text
            assert "Alex Agent (agent)" in page.text
        assert agent.get("/admin/stats/outcomes.json").status_code == 200
        # ... but changing what the assistant answers is the owner's
        csrf = csrf_of(agent.get("/admin/gaps").text)
        form = {"csrf": csrf, "lang": "en", "mode": "example", "intent": "greet", "text": "yo"}
        r = agent.post("/admin/gaps/add", data=form)
        assert r.status_code == 403 and "owner" in r.json()["error"]
        assert agent.get("/admin/gaps/status.json").json()["state"] == "idle"
        # the owner without the session's CSRF token: refused before anything is changed
        r = owner.post("/admin/gaps/add", data={**form, "csrf": "forged"})
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
        assert owner.get("/admin/gaps/status.json").json()["state"] == "idle"
