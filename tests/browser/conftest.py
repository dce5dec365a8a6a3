"""A real headless Chromium (Debian's package) driven by Playwright's async API.

One browser for the whole session (launching costs about half a second), a fresh context per
page. Playwright objects belong to the event loop that made them, so every async test in this
folder runs in pytest-asyncio's session loop.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pytest_asyncio import is_async_test

from tests.conftest import missing

CHROMIUM = os.environ.get("CONCIERGE_CHROMIUM") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if is_async_test(item) and HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(session_loop, append=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    if not os.path.exists(CHROMIUM):
        missing(
            f"Chromium not found at {CHROMIUM} (apt-get install chromium, or CONCIERGE_CHROMIUM)"
        )
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


NewPage = Callable[..., Awaitable[Any]]


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser: Any) -> AsyncIterator[NewPage]:
    """``await new_page(**context_options)`` -> a page in a fresh browser context.

    A JavaScript error on any of the test's pages fails the test.
    """
    contexts: list[Any] = []
    errors: list[str] = []

    async def make(**options: Any) -> Any:
        ctx = await browser.new_context(**options)
        contexts.append(ctx)
        page = await ctx.new_page()
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        return page

    yield make
    for ctx in contexts:
        await ctx.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
