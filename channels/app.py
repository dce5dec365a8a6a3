"""The one ASGI app: web chat, widget, APIs, and whichever channels are configured."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from bot.handoff.service import HandoffService
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.storage.models import Contact, Message, OutboxMessage
from channels.web import page_templates
from channels.web.chat import Hub, WebChat, WebSender
from channels.web.fanout import PgFanout
from channels.web.rest import RequestTooLarge, RestChannel, bad_request, read_json
from channels.web.widget import script as widget_script

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
STATIC = WEB_DIR / "static"

RouteFactory = Callable[[Runtime], Iterable[BaseRoute]]
# Channel and feature modules that contribute routes; each is called with the runtime and
# returns its routes (an empty list when it is not configured).
ROUTE_FACTORIES: list[str] = [
    "channels.telegram:routes",
    "channels.slack:routes",
    "channels.web.admin:routes",
    "channels.web.events:routes",
]


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    route_factories: Iterable[RouteFactory] = (),
) -> Starlette:
    settings = settings or (runtime.settings if runtime else load_settings())
    runtime = runtime or Runtime(settings)
    hub = Hub()
    fanout = PgFanout(runtime.db, hub) if runtime.db.is_postgres else None
    if fanout is not None:
        runtime.on_start(fanout.start)
        runtime.on_stop(fanout.stop)
    runtime.add_sender(WebSender(hub, fanout))
    chat = WebChat(runtime, hub)
    rest = RestChannel(runtime)
    templates = page_templates()

    async def demo(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        try:
            tpl = templates.get_template("demo.html")
        except Exception:  # template missing: a bare page still carries the widget
            return HTMLResponse(
                f"<!doctype html><title>Concierge</title><h1>Concierge</h1>"
                f'<script src="{base}/widget.js" data-concierge-url="{base}" defer></script>'
            )
        return HTMLResponse(tpl.render(base_url=base, request=request))

    def static(name: str, media_type: str) -> Callable[[Request], Any]:
        async def handler(_: Request) -> Response:
            return FileResponse(
                STATIC / name,
                media_type=media_type,
                headers={"Cache-Control": "public, max-age=300"},
            )

        return handler

    widget = widget_script(runtime.responses, settings.languages, settings.default_language)

    async def widget_js(_: Request) -> Response:
        return Response(
            widget,
            media_type="application/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def healthz(_: Request) -> Response:
        try:
            await runtime.db.check()
        except Exception as e:
            return JSONResponse({"status": "error", "database": str(e)}, status_code=503)
        degraded = runtime.health.degraded
        body: dict[str, Any] = {
            "status": "degraded" if degraded else "ok",
            "database": "ok",
            "channels": sorted(runtime.senders),
        }
        if degraded:  # a connection of a channel fails (it keeps trying): why
            body["degraded"] = degraded
        return JSONResponse(body)

    async def metrics(request: Request) -> Response:
        if settings.metrics_token:  # Prometheus: authorization: {credentials: <token>}
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), settings.metrics_token.encode()
            ):
                return JSONResponse(
                    {
                        "error": "GET /metrics needs 'Authorization: Bearer <CONCIERGE_METRICS_TOKEN>'"
                    },
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        async with runtime.db.session() as s:

            async def counts(*columns: Any) -> list[Any]:
                """The rows' number per value of ``columns``: ``(value, ..., n)``."""
                return list(
                    (await s.execute(select(*columns, func.count()).group_by(*columns))).all()
                )

            msgs = await counts(Message.channel, Message.direction)
            ob = await counts(OutboxMessage.channel, OutboxMessage.status)
            stages = await counts(Contact.lifecycle_stage)
        reg = CollectorRegistry()
        reg.register(_Snapshot(msgs, ob, stages))
        reg.register(_RuntimeSnapshot(runtime))
        handoff = runtime.maybe_service(HandoffService)
        if handoff is not None:
            reg.register(_HandoffSnapshot(await handoff.metrics()))
        return Response(generate_latest(reg), media_type="text/plain; version=0.0.4")

    async def parse(request: Request) -> Response:
        try:
            data = await read_json(request, 64 * 1024)
        except RequestTooLarge as e:
            return bad_request(str(e), 413)
        except ValueError as e:
            return bad_request(str(e))
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            return bad_request("body must be a JSON object with a string 'text'")
        text = data["text"]
        if len(text.encode("utf-8")) > settings.max_message_bytes:
            return bad_request(f"'text' is longer than {settings.max_message_bytes} bytes", 413)
        hint = data.get("language") if isinstance(data.get("language"), str) else None
        return JSONResponse(await runtime.nlu.parse(text, hint))

    routes: list[BaseRoute] = [
        Route("/", demo),
        Route("/widget.js", widget_js),
        Route("/widget.css", static("widget.css", "text/css")),
        WebSocketRoute("/ws/chat", chat.endpoint),
        Route("/webhooks/rest/webhook", rest.webhook, methods=["POST"]),
        Route("/webhooks/rest/", _rest_status, methods=["GET"]),
        Route("/model/parse", parse, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
    ]
    for factory in [*_load_factories(), *route_factories]:
        routes.extend(factory(runtime))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=settings.allowed_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
            )
        ],
    )
    app.state.runtime = runtime
    app.state.hub = hub
    return app


async def _rest_status(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _load_factories() -> list[RouteFactory]:
    import importlib

    out: list[RouteFactory] = []
    for dotted in ROUTE_FACTORIES:
        module, _, attr = dotted.partition(":")
        out.append(getattr(importlib.import_module(module), attr))
    return out


class _Snapshot(Collector):
    def __init__(self, msgs: Any, outbox: Any, stages: Any) -> None:
        self.msgs, self.outbox, self.stages = msgs, outbox, stages

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return [
            _gauge("concierge_messages", "Messages stored", ["channel", "direction"], self.msgs),
            _gauge("concierge_outbox", "Outbox rows", ["channel", "status"], self.outbox),
            _gauge("concierge_contacts", "Contacts by lifecycle stage", ["stage"], self.stages),
        ]


def _gauge(name: str, help_: str, labels: list[str], rows: Iterable[Any]) -> GaugeMetricFamily:
    """A gauge with one sample per row ``(label value, ..., value)``."""
    gauge = GaugeMetricFamily(name, help_, labels=labels)
    for *values, n in rows:
        gauge.add_metric(values, n)
    return gauge


class _RuntimeSnapshot(Collector):
    """Failed turns, and the state of the channels' own connections (polling, Socket Mode)."""

    def __init__(self, runtime: Runtime) -> None:
        self.errors = dict(runtime.engine.turn_errors)
        self.state = dict(runtime.health.state)
        self.reconnects = dict(runtime.health.reconnects)
        self.processes = runtime.peers.count if runtime.peers is not None else 1

    def collect(self) -> Iterable[Metric]:
        errors = CounterMetricFamily(
            "concierge_turn_errors",
            "Turns that failed (the person got an apology)",
            labels=["channel"],
        )
        for channel, n in sorted(self.errors.items()):
            errors.add_metric([channel], n)
        up = GaugeMetricFamily(
            "concierge_connection_up", "1 while a channel's connection works", labels=["name"]
        )
        for name, why in sorted(self.state.items()):
            up.add_metric([name], 0 if why else 1)
        lost = CounterMetricFamily(
            "concierge_connection_failures", "A channel's connection failed", labels=["name"]
        )
        for name, n in sorted(self.reconnects.items()):
            lost.add_metric([name], n)
        processes = GaugeMetricFamily(
            "concierge_processes",
            "concierge run processes sharing the database (and the send limits)",
            value=self.processes,
        )
        return [errors, up, lost, processes]


class _HandoffSnapshot(Collector):
    def __init__(self, m: dict[str, Any]) -> None:
        self.m = m

    def collect(self) -> Iterable[GaugeMetricFamily]:
        out = [
            _gauge(
                "concierge_handoffs",
                "Handoffs by reason and status",
                ["reason"],
                self.m["by_reason"].items(),
            ),
            _gauge(
                "concierge_handoffs_status",
                "Handoffs by status",
                ["status"],
                self.m["by_status"].items(),
            ),
        ]
        for key, help_ in (
            ("first_response_median_s", "Median seconds to the first staff answer"),
            ("resolution_median_s", "Median seconds to resolution"),
            ("csat_average", "Average CSAT score (1-5)"),
        ):
            if self.m[key] is not None:
                out.append(GaugeMetricFamily(f"concierge_handoff_{key}", help_, value=self.m[key]))
        return out


def app_factory() -> Starlette:
    """``uvicorn --factory channels.app:app_factory``."""
    return create_app()
