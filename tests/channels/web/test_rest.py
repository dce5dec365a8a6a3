"""Rasa's REST channel, over real HTTP against the live app."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from bot.settings import Settings
from tests.conftest import LiveServer


@pytest.fixture
def server(
    db_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> LiveServer:
    return start_server(make_settings(db_url))


def test_rest_webhook_answers_in_rasa_shape(server: LiveServer) -> None:
    r = httpx.post(
        f"{server.url}/webhooks/rest/webhook",
        json={"sender": "alice", "message": "How long do I have to return something?"},
    )
    assert r.status_code == 200
    replies = r.json()
    assert isinstance(replies, list) and replies
    assert all(set(x) >= {"recipient_id", "text"} for x in replies)
    assert all(x["recipient_id"] == "alice" for x in replies)
    assert "30 days" in replies[0]["text"]
    # the FAQ answer is followed by a feedback question with buttons
    assert any(x.get("buttons") for x in replies)
    b = next(x for x in replies if x.get("buttons"))["buttons"][0]
    assert set(b) >= {"title", "payload"}


def test_rest_webhook_button_payload_bypasses_nlu(server: LiveServer) -> None:
    r = httpx.post(
        f"{server.url}/webhooks/rest/webhook",
        json={"sender": "bob", "message": "/faq/warranty"},
    )
    assert r.status_code == 200
    assert "2-year warranty" in r.json()[0]["text"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"message": "hi"}', "'sender'"),
        (b'{"sender": "x", "message": 5}', "'message'"),
        (b'{"sender": "x", "message": "hi", "metadata": 3}', "'metadata'"),
    ],
)
def test_rest_webhook_bad_requests_get_a_reason(
    server: LiveServer, body: bytes, reason: str
) -> None:
    r = httpx.post(
        f"{server.url}/webhooks/rest/webhook",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert reason in r.json()["error"]


def test_rest_webhook_refuses_oversized_message(server: LiveServer) -> None:
    r = httpx.post(
        f"{server.url}/webhooks/rest/webhook",
        json={"sender": "x", "message": "a" * 5000},
    )
    assert r.status_code == 413
    assert "limit is 4096" in r.json()["error"]


def test_healthz_and_metrics(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    httpx.post(f"{server.url}/webhooks/rest/webhook", json={"sender": "m", "message": "hello"})
    text = httpx.get(f"{server.url}/metrics").text
    assert 'concierge_messages{channel="rest",direction="in"} 1.0' in text
