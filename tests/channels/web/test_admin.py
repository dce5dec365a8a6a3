"""The admin pages' login, logout and /metrics over real HTTP against the live app."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from bot.settings import Settings
from tests.conftest import LiveServer

PASSWORD = "pw-123"
PROXY = {"X-Forwarded-For": "203.0.113.5"}  # everyone behind the same proxy address


@pytest.fixture
def server(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> LiveServer:
    return start_server(
        make_settings(db_url, admin_password=PASSWORD, metrics_token="metrics-token-1")
    )


def client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=PROXY, timeout=30)


def form_csrf(c: httpx.Client, path: str = "/admin/login") -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', c.get(path).text)
    return m.group(1) if m else ""  # the login test below says whether it must be there


def login(c: httpx.Client, name: str, password: str) -> int:
    r = c.post("/admin/login", data={"name": name, "password": password, "csrf": form_csrf(c)})
    return r.status_code


def test_failures_lock_only_their_own_account_and_browser(server: LiveServer) -> None:
    with client(server) as attacker, client(server) as anna, client(server) as new_laptop:
        assert [login(attacker, "mallory", "guess") for _ in range(5)] == [401] * 5
        assert login(attacker, "mallory", "guess") == 429
        assert login(attacker, "mallory", PASSWORD) == 429  # a locked key: guessing is slowed
        # staff behind the same proxy, with the right password, get in
        assert login(anna, "Anna", PASSWORD) == 303
        assert anna.get("/admin/inbox").status_code == 200
        # the attacker goes for Anna's name from the same address
        assert [login(attacker, "Anna", "guess") for _ in range(5)] == [401] * 5
        assert login(attacker, "Anna", PASSWORD) == 429
        # Anna's browser, which logged in before, is a key of its own: still gets in
        anna.cookies.delete("concierge_admin", path="/admin")
        assert login(anna, "Anna", PASSWORD) == 303
        # a browser never used before, same address and name, waits out the window
        assert login(new_laptop, "Anna", PASSWORD) == 429
        assert login(new_laptop, "Bert", PASSWORD) == 303


def test_many_names_from_one_address_do_not_multiply_the_guesses(server: LiveServer) -> None:
    with client(server) as attacker:
        codes = [login(attacker, f"name{i}", "guess") for i in range(35)]
        assert codes[:30] == [401] * 30 and set(codes[30:]) == {429}


def test_login_form_needs_its_csrf_token(server: LiveServer) -> None:
    with client(server) as c, client(server) as other:
        r = c.post("/admin/login", data={"name": "Anna", "password": PASSWORD})
        assert r.status_code == 403 and "form" in r.text
        # a token from another browser's form (a page elsewhere cannot read ours)
        token = form_csrf(other)
        assert token
        c.cookies.clear()
        r = c.post("/admin/login", data={"name": "Anna", "password": PASSWORD, "csrf": token})
        assert r.status_code == 403
        assert c.get("/admin/inbox", follow_redirects=False).status_code == 303
        assert login(c, "Anna", PASSWORD) == 303


def test_logout_is_a_post_and_ends_the_session_everywhere(server: LiveServer) -> None:
    with client(server) as c:
        assert login(c, "Anna", PASSWORD) == 303
        cookie = c.cookies.get("concierge_admin", path="/admin")
        assert cookie
        assert c.get("/admin/logout").status_code == 405
        assert c.get("/admin/inbox").status_code == 200  # a GET logged nobody out
        csrf = form_csrf(c, "/admin/inbox")
        assert csrf
        assert c.post("/admin/logout", data={"csrf": "forged"}).status_code == 403
        assert c.post("/admin/logout", data={"csrf": csrf}).status_code == 303
    # the cookie, copied before the logout, opens nothing any more
    with httpx.Client(base_url=server.url, timeout=30) as thief:
        thief.cookies.set("concierge_admin", cookie, path="/admin")
        r = thief.get("/admin/inbox", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/admin/login"
        assert thief.get("/admin/inbox/1/messages.json").status_code == 401


def test_metrics_behind_a_token(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert httpx.get(f"{server.url}/metrics", headers=bad).status_code == 401
    good = {"Authorization": "Bearer metrics-token-1"}
    r = httpx.get(f"{server.url}/metrics", headers=good)
    assert r.status_code == 200 and "concierge_outbox" in r.text
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # health needs none
