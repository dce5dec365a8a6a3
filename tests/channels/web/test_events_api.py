"""POST /api/v1/events over real HTTP against the live app, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.lifecycle.models import Event, StageTransition
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Contact
from channels.web.events import signature
from tests.conftest import LiveServer

SECRET = "shop-events-secret"


@pytest.fixture
def server(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> LiveServer:
    return start_server(make_settings(db_url, events_secret=SECRET))


def post(
    server: LiveServer,
    body: Any,
    *,
    secret: str | None = SECRET,
    raw: bytes | None = None,
    **headers: str,
) -> httpx.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    h = {"Content-Type": "application/json", **headers}
    if secret is not None:
        h["X-Concierge-Signature"] = signature(secret, data)
    return httpx.post(f"{server.url}/api/v1/events", content=data, headers=h, timeout=30)


def event(
    ident: str,
    type_: str = "signed_up",
    user: str = "u1",
    ago: timedelta = timedelta(0),
    **props: Any,
) -> dict[str, Any]:
    at = datetime.now(UTC) - ago
    return {
        "id": ident,
        "type": type_,
        "user_id": user,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "properties": props,
    }


def query(url: str, stmt: Any) -> Any:
    async def go() -> Any:
        db = Database(url)
        try:
            async with db.session() as s:
                return (await s.execute(stmt)).all()
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_signature_is_required_and_checked(server: LiveServer, db_url: str) -> None:
    body = event("e1")
    r = post(server, body, secret=None)
    assert r.status_code == 401 and "X-Concierge-Signature" in r.json()["error"]
    r = post(server, body, secret="not-the-secret")
    assert r.status_code == 401 and "does not match" in r.json()["error"]
    r = post(server, body, secret=None, **{"X-Concierge-Signature": "md5=abc"})
    assert r.status_code == 401 and "sha256=" in r.json()["error"]
    assert query(db_url, select(func.count()).select_from(Event)) == [(0,)]
    r = post(server, body)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "transitions": 1,
        "results": [{"index": 0, "id": "e1", "status": "accepted"}],
    }
    # the signature covers the exact bytes: a changed body with the old signature fails
    data = json.dumps(body).encode()
    sig = signature(SECRET, data)
    r = post(
        server,
        None,
        secret=None,
        raw=data.replace(b"signed_up", b"purchased"),
        **{"X-Concierge-Signature": sig},
    )
    assert r.status_code == 401


def test_same_event_twice_is_stored_once(server: LiveServer, db_url: str) -> None:
    body = event("order-1-paid", "purchased", amount=25)
    first = post(server, body)
    again = post(server, body)
    assert first.json()["results"] == [{"index": 0, "id": "order-1-paid", "status": "accepted"}]
    assert again.status_code == 200
    assert again.json()["results"] == [{"index": 0, "id": "order-1-paid", "status": "duplicate"}]
    assert query(db_url, select(Contact.purchase_count, Contact.monetary_total)) == [(1, 25)]
    assert query(db_url, select(func.count()).select_from(Event)) == [(1,)]
    # twice in one batch as well
    r = post(server, [event("x", "added_to_cart", "u2"), event("x", "added_to_cart", "u2")])
    assert [i["status"] for i in r.json()["results"]] == ["accepted", "duplicate"]


def test_batches_in_every_shape(server: LiveServer, db_url: str) -> None:
    hundred = [event(f"b{i}", "signed_up", f"user-{i % 40}") for i in range(100)]
    r = post(server, {"events": hundred})
    assert r.status_code == 200 and r.json()["accepted"] == 100
    r = post(server, [event("c1", "purchased", "user-1", amount="19.90")])
    assert r.json()["accepted"] == 1
    assert query(db_url, select(func.count()).select_from(Contact)) == [(40,)]
    stages = dict(query(db_url, select(Contact.user_id, Contact.lifecycle_stage)))
    assert stages["user-1"] == "purchase" and stages["user-2"] == "consideration"


def test_out_of_order_events_settle_by_occurred_at(server: LiveServer, db_url: str) -> None:
    post(server, event("d", "delivered", ago=timedelta(days=1)))
    post(server, event("u", "used", ago=timedelta(hours=2)))
    r = post(server, event("p", "purchased", ago=timedelta(days=3), amount=40))
    assert r.status_code == 200
    assert query(db_url, select(Contact.lifecycle_stage, Contact.purchase_count)) == [
        ("retention", 1)
    ]
    moves = query(
        db_url, select(StageTransition.to_stage, StageTransition.cause).order_by(StageTransition.id)
    )
    assert moves[-1] == ("retention", "replay")


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty body"),
        (b'"just a string"', 422, "send an event object"),
        (b"[]", 422, "no events"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(
    server: LiveServer, raw: bytes, status: int, words: str
) -> None:
    r = post(server, None, raw=raw)
    assert r.status_code == status
    assert words in r.json()["error"] + json.dumps(r.json().get("errors", []))


def test_each_event_is_accepted_or_rejected_on_its_own(server: LiveServer, db_url: str) -> None:
    good = event("ok-1")
    bad_time = {**event("t-1"), "occurred_at": "2026-03-01T10:00:00"}
    bad_amount = {**event("t-2"), "properties": "amount=3"}
    unknown = {**event("t-3"), "customer": "u1"}
    no_user = {k: v for k, v in event("t-4").items() if k != "user_id"}
    wrong_type = {**event("t-5"), "type": "Bought Stuff!"}
    future = event("t-6", ago=-timedelta(days=2))
    year_one = {**event("t-7"), "occurred_at": "0001-01-01T00:00:00Z"}
    nul = {**event("t-8"), "properties": {"note": "a\u0000b"}}
    good2 = event("ok-2", user="u2")
    batch = [good, bad_time, bad_amount, unknown, no_user, wrong_type, future, year_one, nul]
    r = post(server, [*batch, good2])
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["accepted"] == 2 and body["rejected"] == 8
    results = body["results"]
    assert [x["index"] for x in results] == list(range(10))
    assert [x["status"] for x in results] == ["accepted"] + ["rejected"] * 8 + ["accepted"]
    by_index = {x["index"]: x for x in results}
    assert by_index[1]["id"] == "t-1"
    assert by_index[1]["errors"][0]["field"] == "occurred_at"
    assert "time zone" in by_index[1]["errors"][0]["message"]
    assert by_index[2]["errors"][0]["field"] == "properties"
    assert "unknown field" in by_index[3]["errors"][0]["message"]
    assert by_index[4]["errors"][0]["field"] == "user_id"
    assert by_index[5]["errors"][0]["field"] == "type"
    assert by_index[6]["errors"][0]["message"] == "is in the future"
    assert by_index[7]["errors"][0]["field"] == "occurred_at"
    assert "NUL" in by_index[8]["errors"][0]["message"]
    stored = query(db_url, select(Event.event_id).order_by(Event.event_id))
    assert stored == [("ok-1",), ("ok-2",)]
    # the same batch again: the good ones are duplicates, the bad ones still rejected
    r = post(server, [*batch, good2])
    assert r.status_code == 207
    assert [x["status"] for x in r.json()["results"]] == (
        ["duplicate"] + ["rejected"] * 8 + ["duplicate"]
    )
    # nothing valid at all: 422, and the reasons
    r = post(server, [future, year_one])
    assert r.status_code == 422
    assert r.json()["error"] == "2 invalid event(s); nothing was stored"
    assert r.json()["errors"][0]["message"] == "is in the future"


def test_limits_and_content_type(server: LiveServer) -> None:
    r = post(server, [event(f"m{i}") for i in range(1001)])
    assert r.status_code == 422 and "at most 1000" in r.json()["errors"][0]["message"]
    r = post(server, event("z"), **{"Content-Type": "text/plain"})
    assert r.status_code == 415
    big = json.dumps({**event("big"), "properties": {"blob": "x" * 5_000_000}}).encode()
    r = post(server, None, raw=big)
    assert r.status_code == 413


def test_openapi_schema_is_published(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=10)
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    op = doc["paths"]["/api/v1/events"]["post"]
    assert {"200", "400", "401", "413", "422"} <= set(op["responses"])
    schema = doc["components"]["schemas"]["Event"]
    assert set(schema["required"]) == {"id", "type", "user_id", "occurred_at"}
    assert schema["additionalProperties"] is False
    header = doc["components"]["securitySchemes"]["signature"]
    assert header["in"] == "header" and header["name"] == "X-Concierge-Signature"


def test_the_api_is_off_without_a_secret(live_server: str) -> None:
    body = json.dumps(event("e")).encode()
    r = httpx.post(
        f"{live_server}/api/v1/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 503 and "CONCIERGE_EVENTS_SECRET" in r.json()["error"]


def test_a_year_one_event_costs_only_itself(server: LiveServer, db_url: str) -> None:
    """``0001-01-01`` (a shop's empty-date default) once failed its whole batch with a 500."""
    year_one = {**event("y-1", user="u7"), "occurred_at": "0001-01-01T00:00:00+01:00"}
    r = post(server, [event("y-0", user="u7"), year_one])
    assert r.status_code == 207, r.text
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "rejected"]
    assert "1970" in r.json()["results"][1]["errors"][0]["message"]
    assert query(db_url, select(Event.event_id)) == [("y-0",)]
