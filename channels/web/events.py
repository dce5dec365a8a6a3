"""``POST /api/v1/events``: the shop's events in (signed), ``GET /api/v1/openapi.json``.

Authentication: ``X-Concierge-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw request
body with ``CONCIERGE_EVENTS_SECRET`` as the key (as GitHub and Stripe sign webhooks). Example::

    body='{"id":"ev-1","type":"purchased","user_id":"u-42","occurred_at":"2026-03-01T10:00:00Z"}'
    sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$CONCIERGE_EVENTS_SECRET" -r | cut -d' ' -f1)
    curl -H "X-Concierge-Signature: sha256=$sig" -H 'Content-Type: application/json' \\
         -d "$body" http://localhost:8000/api/v1/events
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.lifecycle.schema import openapi, parse_batch
from bot.lifecycle.service import LifecycleService, service_of
from bot.runtime import Runtime
from channels.web.rest import loads

HEADER = "X-Concierge-Signature"


def signature(secret: str, body: bytes) -> str:
    """The header value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _error(reason: str, status: int, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": reason}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


class EventsAPI:
    def __init__(self, runtime: Runtime, svc: LifecycleService) -> None:
        self.runtime = runtime
        self.svc = svc

    async def post(self, request: Request) -> Response:
        secret = self.runtime.settings.events_secret
        if not secret:
            return _error("the events API is off: set CONCIERGE_EVENTS_SECRET", 503)
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if ctype not in ("application/json", ""):
            return _error(f"Content-Type must be application/json, not {ctype}", 415)
        limit = self.svc.settings.max_body_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            return _error(f"body is {length} bytes; the limit is {limit}", 413)
        buf = bytearray()
        async for chunk in request.stream():
            buf += chunk
            if len(buf) > limit:
                return _error(f"body is larger than {limit} bytes", 413)
        body = bytes(buf)
        given = request.headers.get(HEADER)
        if not given:
            return _error(f"missing {HEADER} header (sha256=<hex HMAC-SHA256 of the body>)", 401)
        if not given.startswith("sha256=") or len(given) != 71:
            return _error(f"{HEADER} must be sha256=<64 hex digits>", 401)
        if not hmac.compare_digest(given.lower(), signature(secret, body)):
            return _error(f"{HEADER} does not match the body (wrong secret or changed body)", 401)
        if not body.strip():
            return _error('empty body; send an event, a list of events or {"events": [...]}', 400)
        try:
            data = loads(body)
        except ValueError as e:
            return _error(str(e), 400)
        if not isinstance(data, dict | list):
            return _error('send an event object, a list of events or {"events": [...]}', 422)
        events, errors = parse_batch(data, self.svc.now() + self.svc.settings.future_tolerance)
        if errors:
            n = len({e.get("index") for e in errors})
            return _error(f"{n} invalid event(s); nothing was stored", 422, errors)
        result = await self.svc.ingest(events, source="api")
        return JSONResponse(result.as_json([e.id for e in events]))

    async def schema(self, request: Request) -> Response:
        doc = openapi()
        base = str(request.base_url).rstrip("/")
        doc["servers"] = [{"url": base}]
        return JSONResponse(doc)


def routes(runtime: Runtime) -> list[BaseRoute]:
    try:
        svc = service_of(runtime)
    except LookupError:
        return []
    api = EventsAPI(runtime, svc)
    return [
        Route("/api/v1/events", api.post, methods=["POST"]),
        Route("/api/v1/openapi.json", api.schema, methods=["GET"]),
    ]
