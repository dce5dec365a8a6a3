"""Fixtures of the engine tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from bot.runtime import Runtime
from bot.settings import Settings


@pytest.fixture
async def rt(db_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Runtime]:
    """A started runtime with the demo shop's content (nlu_data/, flows/) (no delivery worker)."""
    r = Runtime(make_settings(db_url), start_worker=False)
    await r.start(migrate=False)
    yield r
    await r.stop()
