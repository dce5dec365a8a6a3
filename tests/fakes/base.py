"""A fake external API: a real aiohttp server on 127.0.0.1, port 0, in a thread of its own.

It records every call and plays scenarios (429 with retry-after, 403, 500, slow answers,
connection resets), in the manner of opsdroid's ``testing/external_api.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    ok: bool = True  # False when a scenario made it fail
    at: float = field(default_factory=time.monotonic)
    # True once the answer went back to a client that was still connected: the caller knows
    # the call succeeded (a call whose client went away meanwhile was done, but not confirmed)
    answered: bool = False


CALL = web.RequestKey("call", Call)


@dataclass
class Scenario:
    """What the next matching call gets instead of the normal answer."""

    # "429" | "403" | "409" | "500" | "slow" | "reset" | "custom" | "hang" (the request is
    # taken and never answered nor carried out, like a dead proxy: ``delay`` seconds, or until
    # the client gives up)
    kind: str
    method: str | None = None  # None: any method
    times: int = 1
    retry_after: float = 1.0
    delay: float = 0.0
    body: Any = None  # "custom": the JSON answer
    status: int = 200  # "custom": the HTTP status
    when: dict[str, Any] | None = None  # only calls whose params match (e.g. {"chat_id": 5})

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.times <= 0 or self.method not in (None, method):
            return False
        return all(str(params.get(k)) == str(v) for k, v in (self.when or {}).items())


class FakeServer:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.scenarios: list[Scenario] = []
        self.delay = 0.0  # every API call (but long polling) answers this many seconds late
        self._lock = threading.Lock()
        self._closing = asyncio.Event()  # set when the fake stops (ends hanging requests)
        self.loop = asyncio.new_event_loop()
        self.app = web.Application(
            client_max_size=20 * 1024 * 1024, middlewares=[self._mark_answered]
        )
        self.runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        # for a fake in another process (benchmarks): the calls, and forgetting them
        self.app.router.add_get("/_fake/calls", self._fake_calls)
        self.app.router.add_post("/_fake/reset", self._fake_reset)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        self.runner = web.AppRunner(self.app, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._closing.set)
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()

    # --- scenarios and records -------------------------------------------------------
    def play(self, kind: str, method: str | None = None, times: int = 1, **kw: Any) -> None:
        """The next ``times`` calls of ``method`` (matching ``when=``) get ``kind`` instead."""
        with self._lock:
            self.scenarios.append(Scenario(kind, method, times, **kw))

    def clear_scenarios(self) -> None:
        with self._lock:
            self.scenarios.clear()

    def _take_scenario(self, method: str, params: dict[str, Any]) -> Scenario | None:
        with self._lock:
            for sc in self.scenarios:
                if sc.matches(method, params):
                    sc.times -= 1
                    if sc.times == 0:
                        self.scenarios.remove(sc)
                    return sc
        return None

    async def hang(self, sc: Scenario) -> None:
        with contextlib.suppress(TimeoutError):  # the fake stops: the hang ends with it
            await asyncio.wait_for(self._closing.wait(), sc.delay or 3600)

    def record(
        self,
        method: str,
        params: dict[str, Any],
        ok: bool = True,
        request: web.Request | None = None,
    ) -> Call:
        call = Call(method, params, ok)
        with self._lock:
            self.calls.append(call)
        if request is not None:
            request[CALL] = call
        return call

    async def _fake_calls(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", 0))
        with self._lock:
            calls = self.calls[since:]
        return web.json_response(
            [{"method": c.method, "params": c.params, "ok": c.ok, "at": c.at} for c in calls]
        )

    async def _fake_reset(self, request: web.Request) -> web.Response:
        with self._lock:
            self.calls.clear()
            self.scenarios.clear()
        return web.json_response({"ok": True})

    def serve_forever(self) -> None:
        """Run in this process until stdin closes, the URL on stdout's first line
        (``python -m tests.fakes.telegram_api``)."""
        self.start()
        print(self.url, flush=True)
        try:
            sys.stdin.read()
        finally:
            self.stop()

    @web.middleware
    async def _mark_answered(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        resp: web.StreamResponse = await handler(request)
        call = request.get(CALL)
        transport = request.transport
        if call is not None and transport is not None and not transport.is_closing():
            call.answered = True
        return resp

    def calls_to(self, method: str, *, failed: bool = False) -> list[Call]:
        """Calls that succeeded (``failed=True``: those a scenario failed)."""
        with self._lock:
            return [c for c in self.calls if c.method == method and c.ok != failed]

    def count(self, method: str, key: str, value: Any) -> int:
        """How many successful calls of ``method`` had ``params[key] == value``."""
        return sum(1 for c in self.calls_to(method) if str(c.params.get(key)) == str(value))

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10.0,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(method) if where is None or where(c)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


async def read_params(request: web.Request) -> dict[str, Any]:
    """Form, JSON or multipart bodies, and query parameters, as one dict."""
    params: dict[str, Any] = dict(request.query)
    ctype = request.content_type
    if ctype == "application/json":
        body = await request.read()
        if body:
            params.update(json.loads(body))
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for k, v in form.items():
            text = v if isinstance(v, str) else v.file.read().decode()  # type: ignore[union-attr]
            try:
                params[k] = json.loads(text) if text[:1] in "[{" else text
            except json.JSONDecodeError:
                params[k] = text
    return params
