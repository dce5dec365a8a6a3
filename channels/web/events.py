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
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.lifecycle.schema import EventIn, openapi, parse_batch
from bot.lifecycle.service import IngestResult, LifecycleService, service_of
from bot.runtime import Runtime
from channels.web.rest import bad_request, loads, text_problem

HEADER = "X-Concierge-Signature"
log = logging.getLogger(__name__)


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def signature(secret: str, body: bytes) -> str:
    """The header value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class EventsAPI:
    def __init__(self, runtime: Runtime, svc: LifecycleService) -> None:
        self.runtime = runtime
        self.svc = svc

    async def post(self, request: Request) -> Response:
        secret = self.runtime.settings.events_secret
        if not secret:
            return bad_request("the events API is off: set CONCIERGE_EVENTS_SECRET", 503)
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if ctype not in ("application/json", ""):
            return bad_request(f"Content-Type must be application/json, not {ctype}", 415)
        limit = self.svc.settings.max_body_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            return bad_request(f"body is {length} bytes; the limit is {limit}", 413)
        buf = bytearray()
        async for chunk in request.stream():
            buf += chunk
            if len(buf) > limit:
                return bad_request(f"body is larger than {limit} bytes", 413)
        body = bytes(buf)
        given = request.headers.get(HEADER)
        if not given:
            return bad_request(
                f"missing {HEADER} header (sha256=<hex HMAC-SHA256 of the body>)", 401
            )
        if not given.startswith("sha256=") or len(given) != 71:
            return bad_request(f"{HEADER} must be sha256=<64 hex digits>", 401)
        if not hmac.compare_digest(given.lower(), signature(secret, body)):
            return bad_request(
                f"{HEADER} does not match the body (wrong secret or changed body)", 401
            )
        if not body.strip():
            return bad_request(
                'empty body; send an event, a list of events or {"events": [...]}', 400
            )
        try:  # the depth here; text no database keeps is refused event by event below
            data = loads(body, text=False)
        except ValueError as e:
            return bad_request(str(e), 400)
        if not isinstance(data, dict | list):
            return bad_request('send an event object, a list of events or {"events": [...]}', 422)
        events, errors = parse_batch(
            data, self.svc.now() + self.svc.settings.future_tolerance, check=text_problem
        )
        if errors and not events:
            n = len({e.get("index") for e in errors})
            return bad_request(f"{n} invalid event(s); nothing was stored", 422, errors)
        stored, failed = await self._ingest(events)
        return self._results(data, errors, stored, failed)

    async def _ingest(self, events: list[EventIn]) -> tuple[IngestResult, dict[str, str]]:
        """Store the valid events together; should the batch fail anyway (something the
        schema let through and the database refuses), each event alone, so that one bad event
        costs only itself. Returns the result and, by event id, why an event was not stored."""
        try:
            return await self.svc.ingest(events, source="api"), {}
        except Exception:
            log.warning("event batch of %d failed; storing one by one", len(events), exc_info=True)
        total, failed = IngestResult(), {}
        for ev in events:
            try:
                one = await self.svc.ingest([ev], source="api")
            except Exception as e:
                log.warning("event %r was not stored: %s", ev.id, e)
                failed[ev.id] = f"could not be stored: {_first_line(e)}"
                continue
            total.accepted += one.accepted
            total.duplicates += one.duplicates
            total.transitions += one.transitions
            total.flows += one.flows
        return total, failed

    def _results(
        self,
        data: Any,
        errors: list[dict[str, Any]],
        stored: IngestResult,
        failed: dict[str, str],
    ) -> JSONResponse:
        """Every event of the request by its index: accepted, duplicate or rejected (with
        its errors). 200 when none was rejected, else 207 (Multi-Status)."""
        if isinstance(data, dict) and set(data) == {"events"}:
            data = data["events"]
        items = data if isinstance(data, list) else [data]
        rejected: dict[int, list[dict[str, Any]]] = {}
        for e in errors:
            i = e.get("index", 0)
            rejected.setdefault(i, []).append(
                {k: v for k, v in e.items() if k in ("field", "message")}
            )
        fresh = set(stored.accepted)
        results: list[dict[str, Any]] = []
        for i, raw in enumerate(items):
            ident = raw.get("id") if isinstance(raw, dict) else None
            item: dict[str, Any] = {"index": i}
            if isinstance(ident, str):
                item["id"] = ident.strip()
            key = item.get("id")
            if i in rejected:
                item.update(status="rejected", errors=rejected[i])
            elif key in failed:
                item.update(
                    status="rejected", errors=[{"field": "(event)", "message": failed[key]}]
                )
                errors.append({"index": i, "id": key, "field": "(event)", "message": failed[key]})
            elif key in fresh:
                item["status"] = "accepted"
                fresh.discard(key)  # a repeat in the same batch is a duplicate
            else:
                item["status"] = "duplicate"
            results.append(item)
        n_rejected = sum(1 for r in results if r["status"] == "rejected")
        body: dict[str, Any] = {
            "accepted": sum(1 for r in results if r["status"] == "accepted"),
            "duplicates": sum(1 for r in results if r["status"] == "duplicate"),
            "rejected": n_rejected,
            "transitions": stored.transitions,
            "results": results,
        }
        if errors:
            body["errors"] = errors
        return JSONResponse(body, status_code=207 if n_rejected else 200)

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
