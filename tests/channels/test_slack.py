"""Slack end to end: signed requests into the real slack-bolt app, answers through the real
slack_sdk client to a fake Web API server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.settings import Settings
from tests.auxil.build_messages import slack_block_action, slack_dm
from tests.auxil.warm import warm_nlu
from tests.conftest import LiveServer
from tests.fakes.slack_api import FakeSlack, event_callback, send_action, send_event

SECRET = "signing-secret"


@pytest.fixture
def start_server(start_server: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    """The live server, its NLU model trained before the server's start deadline runs."""

    def start(settings: Settings, **kwargs: Any) -> LiveServer:
        return start_server(warm_nlu(settings), **kwargs)

    return start


@pytest.fixture
def server(
    slack: FakeSlack,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    return start_server(
        make_settings(
            db_url,
            slack_bot_token="xoxb-test",
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
        )
    )


def test_dm_gets_an_answer_with_buttons(slack: FakeSlack, server: LiveServer) -> None:
    r = send_event(server.url, SECRET, slack_dm("How long is the warranty?", channel="D7"))
    assert r.status_code == 200
    posted = slack.wait_for("chat.postMessage", 2, where=lambda c: c.params.get("channel") == "D7")
    assert "2-year warranty" in posted[0].params["text"]
    blocks = posted[1].params["blocks"]
    assert blocks[-1]["type"] == "actions"
    assert blocks[-1]["elements"][0]["value"].startswith("/feedback_helpful")


def test_button_press_takes_the_engine_path(slack: FakeSlack, server: LiveServer) -> None:
    send_event(server.url, SECRET, slack_dm("How long is the warranty?", channel="D8", user="U8"))
    posted = slack.wait_for("chat.postMessage", 2, where=lambda c: c.params.get("channel") == "D8")
    value = posted[1].params["blocks"][-1]["elements"][0]["value"]
    r = send_action(server.url, SECRET, slack_block_action(value, user="U8", channel="D8"))
    assert r.status_code == 200
    posted = slack.wait_for("chat.postMessage", 3, where=lambda c: c.params.get("channel") == "D8")
    assert posted[-1].params["text"] == "Thanks for letting me know!"


def test_bad_signature_and_old_timestamp_are_refused(slack: FakeSlack, server: LiveServer) -> None:
    assert send_event(server.url, SECRET, slack_dm("hello"), bad_signature=True).status_code == 401
    old = int(time.time()) - 10 * 60
    assert send_event(server.url, SECRET, slack_dm("hello"), ts=old).status_code == 401
    assert send_event(server.url, "wrong-secret", slack_dm("hello")).status_code == 401
    server.wait_drained()
    assert slack.posted() == []


def test_retried_event_is_answered_once(slack: FakeSlack, server: LiveServer) -> None:
    event = slack_dm("hello", channel="D9", msg_id="same-message")
    assert send_event(server.url, SECRET, event, event_id="Ev9").status_code == 200
    assert send_event(server.url, SECRET, event, event_id="Ev9", retry=1).status_code == 200
    assert send_event(server.url, SECRET, event, event_id="Ev9", retry=2).status_code == 200
    slack.wait_for("chat.postMessage", 1, where=lambda c: c.params.get("channel") == "D9")
    server.wait_drained()
    assert len(slack.posted("D9")) == 1


def test_retry_after_a_restart_is_dropped_by_event_id(
    slack: FakeSlack,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> None:
    """Slack retries with the same ``event_id``; the retry may reach a restarted (or another)
    process, and not every event carries a message id the engine could recognise."""
    settings = make_settings(
        db_url,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
    )
    first = start_server(settings)
    event = slack_dm("hello", channel="D12")
    del event["client_msg_id"]
    assert send_event(first.url, SECRET, event, event_id="Ev12").status_code == 200
    slack.wait_for("chat.postMessage", 1, where=lambda c: c.params.get("channel") == "D12")
    first.stop()

    second = start_server(settings)
    retry = {**event, "ts": f"{time.time():.6f}"}  # as if our first answer never got back
    assert send_event(second.url, SECRET, retry, event_id="Ev12", retry=1).status_code == 200
    assert send_event(second.url, SECRET, slack_dm("hi", channel="D13")).status_code == 200
    slack.wait_for("chat.postMessage", 1, where=lambda c: c.params.get("channel") == "D13")
    second.wait_drained()
    assert len(slack.posted("D12")) == 1


@pytest.mark.parametrize("scenario", ["429", "500"])
def test_rate_limit_and_errors_delay_but_deliver_once(
    slack: FakeSlack, server: LiveServer, scenario: str
) -> None:
    slack.play(scenario, "chat.postMessage", times=2, retry_after=1)
    send_event(server.url, SECRET, slack_dm("hello", channel="D10"))
    slack.wait_for(
        "chat.postMessage", 1, timeout=20, where=lambda c: c.params.get("channel") == "D10"
    )
    server.wait_drained()
    assert len(slack.posted("D10")) == 1
    assert len(slack.calls_to("chat.postMessage", failed=True)) == 2


def test_own_messages_and_edits_are_ignored(slack: FakeSlack, server: LiveServer) -> None:
    own = slack_dm("I am the bot", channel="D11", user="UBOT")
    edit = {**slack_dm("edited", channel="D11"), "subtype": "message_changed"}
    send_event(server.url, SECRET, own, event_id="E1")
    send_event(server.url, SECRET, edit, event_id="E2")
    server.wait_drained()
    assert slack.posted("D11") == []


def test_socket_mode_needs_no_public_url(
    slack: FakeSlack,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> None:
    """With an app-level token the app connects out to Slack over a WebSocket: events arrive as
    envelopes, each acknowledged; a redelivered envelope (same event) is answered once."""
    srv = start_server(
        make_settings(
            db_url,
            slack_bot_token="xoxb-test",
            slack_app_token="xapp-test",
            slack_api_url=slack.api_url,
        )
    )
    assert slack.wait_for("socket.connect", 1)
    body = event_callback(slack_dm("How long is the warranty?", channel="D20"))
    first = slack.push_envelope(body)
    posted = slack.wait_for("chat.postMessage", 2, where=lambda c: c.params.get("channel") == "D20")
    assert "2-year warranty" in posted[0].params["text"]
    again = slack.push_envelope(body, retry_attempt=1)
    acks = slack.wait_for(
        "socket.ack", 2, where=lambda c: c.params.get("envelope_id") in (first, again)
    )
    assert len(acks) == 2
    srv.wait_drained()
    assert len(slack.posted("D20")) == 2  # the answer and its "Was this helpful?", once


def test_customer_text_cannot_ping_the_staff_channel(
    slack: FakeSlack,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> None:
    """A web customer's words reach the staff channel (a handoff's thread): the message's
    fallback ``text`` is escaped like its blocks, so ``<!channel>`` notifies nobody."""
    import httpx

    server = start_server(
        make_settings(
            db_url,
            slack_bot_token="xoxb-test",
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            slack_staff_channel="CSTAFF",
            handoff_hours="mon-sun 00:00-23:59",
        )
    )
    for text in ("I want to talk to a human", "<!channel> <@U0ADMIN> refund me & now"):
        r = httpx.post(
            f"{server.url}/webhooks/rest/webhook",
            json={"sender": "mallory", "message": text},
            timeout=30,
        )
        assert r.status_code == 200
    posted = slack.wait_for(
        "chat.postMessage",
        1,
        timeout=30,
        where=lambda c: "refund me" in str(c.params.get("text")),
    )
    assert posted, [c.params.get("text") for c in slack.calls_to("chat.postMessage")]
    for call in slack.calls_to("chat.postMessage"):
        text = str(call.params.get("text"))
        blocks = json.dumps(call.params.get("blocks"))
        for raw in ("<!channel>", "<@U0ADMIN>"):
            assert raw not in text and raw not in blocks
    text = str(posted[0].params["text"])
    assert "&lt;!channel&gt; &lt;@U0ADMIN&gt; refund me &amp; now" in text
