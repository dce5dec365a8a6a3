"""The Slack app manifest a shop owner pastes into api.slack.com: valid, and in step with the code
(the endpoints the app serves, the events it listens to, the scopes of the calls it makes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from starlette.routing import Route

from bot.settings import Settings
from channels.app import create_app
from tests.conftest import REPO

MANIFEST = REPO / "slack-app-manifest.yml"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_limits_slack_checks_on_import(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert 0 < len(info["name"]) <= 35
    assert len(info.get("description", "")) <= 140
    assert len(manifest["features"]["bot_user"]["display_name"]) <= 80
    for cmd in manifest["features"]["slash_commands"]:
        assert cmd["command"].startswith("/") and len(cmd["description"]) <= 100


def test_scopes_cover_the_calls_and_events(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = {
        "chat:write",  # chat.postMessage, chat.update
        "im:history",  # message.im
        "im:read",
        "im:write",  # conversations.open (a DM to a person)
        "app_mentions:read",  # app_mention
        "channels:history",  # staff replies in a channel's handoff threads
        "groups:history",  # ... or in a private channel's
        "users:read",  # users.info (staff names)
        "reactions:read",  # reaction_added on internal updates
        "commands",  # /concierge
    }
    assert needed <= scopes, f"missing scopes: {sorted(needed - scopes)}"
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"message.im", "app_mention", "message.channels", "reaction_added"} <= events


def test_request_urls_are_routes_the_app_serves(
    manifest: dict[str, Any], sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(
        make_settings(sqlite_url, slack_bot_token="xoxb-test", slack_signing_secret="s")
    )
    served = {r.path for r in app.routes if isinstance(r, Route) and "POST" in (r.methods or ())}
    settings = manifest["settings"]
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        *(c["url"] for c in manifest["features"]["slash_commands"]),
    ]
    for url in urls:
        assert urlparse(url).path in served, f"{url} is not served"
    assert settings["interactivity"]["is_enabled"] is True
    assert isinstance(settings["socket_mode_enabled"], bool)


def test_readme_points_at_the_manifest() -> None:
    readme = Path(REPO / "README.md").read_text(encoding="utf-8")
    assert MANIFEST.name in readme
