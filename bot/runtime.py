"""The running product in one object: settings, database, NLU, engine, delivery, background work.

Channel adapters register a :class:`~bot.types.Sender` (and optionally a rate limiter) and
their own start/stop hooks; features register policies and background tasks. ``bot`` never
imports a channel: the wiring happens in ``channels.app``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from bot.clock import Clock, SystemClock
from bot.engine import (
    NLU,
    Engine,
    faq_policy,
    feedback_buttons_hook,
    feedback_policy,
    opt_out_policy,
)
from bot.health import Health
from bot.i18n import describe_hours
from bot.outbox import DeliveryWorker
from bot.outreach.jobs import Jobs
from bot.ratelimit import RateLimiter
from bot.responses import Responses
from bot.settings import Settings
from bot.shop import load_shop, support_hours
from bot.signals import Signals
from bot.storage.db import Database
from bot.types import Sender

if TYPE_CHECKING:
    from bot.peers import Peers

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
T = TypeVar("T")
STOP_GRACE_SECONDS = 20.0  # how long a stop waits for the sends in flight


def build_nlu(settings: Settings) -> NLU:
    """The configured NLU backend."""
    try:
        from bot.nlu.service import build_backend  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # the embedded NLU is not installed: word-overlap matching
        from bot.matcher import SimpleMatcher

        return SimpleMatcher.from_folder(settings.nlu_data_dir, threshold=0.3)
    backend: NLU = build_backend(settings)
    return backend


class ServiceMissing(LookupError):
    """A feature asked for a service no feature registered on this runtime."""


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        nlu: NLU | None = None,
        start_worker: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.db = Database(settings.database_url)
        self.secret_key = settings.ensure_secret_key()
        self.signals = Signals()
        self.health = Health()
        self.shop = load_shop(settings.content_dir)  # the shop's facts (shop.yml)
        self.responses = Responses.from_folder(
            settings.nlu_data_dir, settings.default_language, self.shop.registers
        )
        hours = support_hours(self.shop, settings)
        self.responses.computed["support_hours"] = lambda lang: describe_hours(hours, lang)
        self._nlu = nlu
        self.senders: dict[str, Sender] = {}
        self.limiters: dict[str, RateLimiter] = {}
        self.worker = DeliveryWorker(
            self.db,
            self.senders,
            clock=self.clock,
            limiters=self.limiters,
            max_attempts=settings.delivery_max_attempts,
            backoff_base=settings.delivery_backoff_base,
            backoff_max=settings.delivery_backoff_max,
            batch_size=settings.delivery_batch_size,
            lease_seconds=settings.delivery_lease_seconds,
            poll_interval=settings.delivery_poll_interval,
            in_doubt=settings.delivery_in_doubt,
            send_timeout=settings.delivery_send_timeout,
        )
        self.start_worker = start_worker
        self.engine = Engine(
            self.db,
            _LazyNLU(self),
            self.responses,
            languages=settings.languages,
            default_language=settings.default_language,
            clock=self.clock,
            max_message_bytes=settings.max_message_bytes,
            on_enqueued=self.worker.wake,
            signals=self.signals,
        )
        self.engine.add_policy("opt_out", opt_out_policy, priority=40)
        self.engine.add_policy("feedback", feedback_policy, priority=50)
        self.engine.add_policy("faq", faq_policy, priority=1000)
        self.engine.add_after_turn(feedback_buttons_hook)
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._background: list[Callable[[], Awaitable[Any]]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._worker_task: asyncio.Task[Any] | None = None
        self.started = False
        # the periodic jobs of every feature (sweeps, due flows, prompts, updates, SLA)
        self.jobs = Jobs(self.clock)
        self.add_background(self.jobs.run)
        # each feature's service by its class (features look each other up here, so a stopped
        # runtime and everything it holds go together; a module-level registry kept every
        # runtime a process ever made alive, with its NLU model)
        self._services: dict[type[Any], object] = {}
        self.peers: Peers | None = None
        if self.db.is_postgres:  # several processes may share the database and the limits
            from bot.peers import Peers

            self.peers = Peers(self.db, self._share_limits)
            self.on_start(self.peers.start)
            self.on_stop(self.peers.stop)
            self.add_background(self.peers.run)
        from bot.features import setup_features

        setup_features(self)

    # --- services ------------------------------------------------------------------------
    def register(self, service: object, *, as_type: type[Any] | None = None) -> None:
        """Make ``service`` findable by its class (or ``as_type``) for the other features."""
        self._services[as_type or type(service)] = service

    def service(self, kind: type[T], missing: str | None = None) -> T:
        """The registered service of class ``kind``; :class:`ServiceMissing` (``missing``, if
        given, says why) if none is."""
        found = self._services.get(kind)
        if found is None:
            raise ServiceMissing(
                missing
                or f"no {kind.__name__} on this runtime (its feature is not set up, or disabled)"
            )
        return cast(T, found)

    def maybe_service(self, kind: type[T]) -> T | None:
        """The registered service of class ``kind``, or None (an optional feature)."""
        return cast("T | None", self._services.get(kind))

    def _share_limits(self, processes: int) -> None:
        for limiter in self.limiters.values():
            limiter.share(processes)

    @property
    def nlu(self) -> NLU:
        if self._nlu is None:
            self._nlu = build_nlu(self.settings)
        return self._nlu

    def add_sender(self, sender: Sender, limiter: RateLimiter | None = None) -> None:
        self.senders[sender.channel] = sender
        if sender.capabilities.text_limit:  # longer texts are split (Engine.text_limits)
            self.engine.text_limits[sender.channel] = sender.capabilities.text_limit
        if limiter is not None:
            if self.peers is not None:
                limiter.share(self.peers.count)
            self.limiters[sender.channel] = limiter

    def on_start(self, hook: Hook) -> None:
        self._on_start.append(hook)

    def on_stop(self, hook: Hook) -> None:
        self._on_stop.append(hook)

    def add_background(self, factory: Callable[[], Awaitable[Any]]) -> None:
        """A long-running coroutine (scheduler, poller) started with the runtime."""
        self._background.append(factory)
        if self.started:
            self._spawn(factory)

    def _spawn(self, factory: Callable[[], Awaitable[Any]]) -> None:
        async def guarded() -> None:
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s stopped", factory)

        self._tasks.append(asyncio.get_running_loop().create_task(guarded()))

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            await self.db.upgrade()
        else:
            await self.db.check()
        _ = self.nlu  # train/load before the first visitor waits for it
        for hook in self._on_start:
            await hook()
        if self.start_worker:
            self._spawn(self.worker.run)
            self._worker_task = self._tasks[-1]
        for factory in self._background:
            self._spawn(factory)
        self.started = True

    async def stop(self) -> None:
        self.jobs.stop()
        self.worker.stop()
        if self._worker_task is not None:
            # sends on the wire finish and are written down before the channels close: cut off
            # after the platform took them in, they would go out again after the restart
            await asyncio.wait([self._worker_task], timeout=STOP_GRACE_SECONDS)
            self._worker_task = None
        for hook in reversed(self._on_stop):
            try:
                await hook()
            except Exception:
                log.exception("stop hook failed")
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.db.dispose()
        self.started = False


class _LazyNLU:
    """Defers building the NLU until first use (or start), so tests can swap it first."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def parse(self, text: str, language_hint: str | None = None) -> dict[str, Any]:
        return await self._runtime.nlu.parse(text, language_hint)
