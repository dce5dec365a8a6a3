"""Fixtures of the engine tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from bot.runtime import Runtime
from bot.settings import Settings
from tests.auxil.senders import add_channels


@pytest.fixture
async def rt(db_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Runtime]:
    """A started runtime with the demo shop's content (nlu_data/, flows/) (no delivery worker)."""
    r = Runtime(make_settings(db_url), start_worker=False)
    add_channels(r)  # the product's channels, as channels.app adds them
    await r.start(migrate=False)
    yield r
    await r.stop()
