"""The console's one guard (channels.web.admin.console.signed_in / owner_only): what a handler
answers without a session, without the CSRF token, and for a role that may not."""

from __future__ import annotations

from typing import Any

import httpx
from itsdangerous import URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from channels.web.admin.console import (
    Answer,
    Console,
    Session,
    not_found,
    owner_only,
    signed_in,
    unsign,
)


class Pages(Console):
    """A console whose session is given (no runtime, no database)."""

    def __init__(self, sess: Session | None) -> None:
        self.sess = sess

    async def session(self, request: Request) -> Session | None:
        return self.sess

    @signed_in
    async def show(self, request: Request, sess: Session) -> Response:
        return PlainTextResponse(f"{request.method} by {sess['name']}")

    @signed_in
    async def missing(self, request: Request, sess: Session) -> Response:
        raise Answer(not_found("thing"))

    @owner_only
    async def erase(self, request: Request, sess: Session) -> Response:
        return PlainTextResponse(f"erased by {sess['name']}")


def client(sess: Session | None) -> httpx.AsyncClient:
    p = Pages(sess)
    routes = [
        Route("/admin/show", p.show, methods=["GET", "POST"]),
        Route("/admin/show.json", p.show),
        Route("/admin/erase", p.erase, methods=["GET", "POST"]),
        Route("/admin/missing", p.missing),
    ]
    app = Starlette(routes=routes)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def who(role: str) -> dict[str, Any]:
    return {"name": "Anna", "role": role, "staff_id": 1, "csrf": "token", "sid": "s"}


async def test_without_a_session_pages_go_to_the_login_and_json_and_posts_get_401() -> None:
    c = client(None)
    r = await c.get("/admin/show")
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert (await c.get("/admin/show.json")).json() == {"error": "login required"}
    assert (await c.get("/admin/show.json")).status_code == 401
    assert (await c.post("/admin/show", data={"csrf": "token"})).status_code == 401
    assert (await c.post("/admin/erase", data={"csrf": "token"})).status_code == 401


async def test_a_post_needs_the_sessions_csrf_token() -> None:
    c = client(who("agent"))
    r = await c.post("/admin/show", data={"csrf": "forged"})
    assert r.status_code == 403 and r.json() == {"error": "bad CSRF token"}
    assert (await c.post("/admin/show")).status_code == 403
    r = await c.post("/admin/show", data={"csrf": "token"})
    assert r.status_code == 200 and r.text == "POST by Anna"
    assert (await c.get("/admin/show")).text == "GET by Anna"


async def test_owner_only_refuses_other_roles_after_the_csrf_check() -> None:
    agent = client(who("agent"))
    r = await agent.post("/admin/erase", data={"csrf": "token"})
    assert r.status_code == 403 and r.json() == {"error": "only the owner may do this"}
    assert (await agent.post("/admin/erase", data={"csrf": "x"})).json() == {
        "error": "bad CSRF token"
    }
    owner = client(who("owner"))
    assert (await owner.post("/admin/erase", data={"csrf": "token"})).text == "erased by Anna"


def test_unsign_and_not_found() -> None:
    signer = URLSafeTimedSerializer("secret", salt="test")
    assert unsign(signer, signer.dumps({"a": 1}), 60) == {"a": 1}
    assert unsign(signer, None, 60) is None
    assert unsign(signer, "", 60) is None
    assert unsign(signer, "forged", 60) is None
    assert unsign(URLSafeTimedSerializer("other", salt="test"), signer.dumps("x"), 60) is None
    r = not_found("contact")
    assert r.status_code == 404 and r.body == b'{"error":"no such contact"}'


async def test_an_answer_raised_in_a_handler_is_the_response() -> None:
    r = await client(who("agent")).get("/admin/missing")
    assert r.status_code == 404 and r.json() == {"error": "no such thing"}
    assert (await client(None).get("/admin/missing")).status_code == 303
