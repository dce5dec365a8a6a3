"""The shape of a shop event (``POST /api/v1/events``, ``concierge events import``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

MAX_BATCH = 1000
# no shop event is older; dates near year 1 overflow date arithmetic (a "0001-01-01" default)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)

EventType = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{0,63}$"),
    Field(description="What happened: signed_up, purchased, delivered, used, refunded, ..."),
]


class EventIn(BaseModel):
    """One thing that happened to one of the shop's customers."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="The shop's unique id of this event: sending it again changes nothing"
    )
    type: EventType
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="The shop's id of the customer (the same as in web chat identification)"
    )
    occurred_at: AwareDatetime = Field(
        description="When it happened, ISO 8601 with a time zone, e.g. 2026-03-01T10:00:00Z"
    )
    properties: dict[str, Any] = Field(
        default_factory=dict,
        description="Anything else, e.g. {order_id, amount, currency, product}",
    )

    @field_validator("occurred_at")
    @classmethod
    def _not_before_1970(cls, v: datetime) -> datetime:
        if v < EARLIEST:
            raise ValueError("must be 1970-01-01 or later")
        return v


_ONE = TypeAdapter(EventIn)


def problems(
    error: ValidationError, index: int | None = None, ident: Any = None
) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{index, id, field, message}`` for a 422 answer."""
    out = []
    for e in error.errors(include_url=False):
        field = ".".join(str(p) for p in e["loc"]) or "(event)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (allowed: id, type, user_id, occurred_at, properties)"
        elif e["type"] == "timezone_aware":
            msg = "needs a time zone, e.g. 2026-03-01T10:00:00Z or +01:00"
        item: dict[str, Any] = {"field": field, "message": msg}
        if index is not None:
            item["index"] = index
        if isinstance(ident, str):
            item["id"] = ident
        out.append(item)
    return out


def parse_one(raw: Any, index: int | None = None) -> tuple[EventIn | None, list[dict[str, Any]]]:
    try:
        return _ONE.validate_python(raw), []
    except ValidationError as e:
        ident = raw.get("id") if isinstance(raw, dict) else None
        return None, problems(e, index, ident)


def parse_batch(
    data: Any,
    latest: datetime | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> tuple[list[EventIn], list[dict[str, Any]]]:
    """A single event, a list of events, or ``{"events": [...]}``; ``latest``: events dated
    after it are refused (the future, beyond some clock skew); ``check``: why an event's raw
    JSON cannot be kept (text no database stores), or ``None``."""
    if isinstance(data, dict) and "events" in data and set(data) == {"events"}:
        data = data["events"]
    items = data if isinstance(data, list) else [data]
    if not items:
        return [], [{"field": "(body)", "message": "no events in the request"}]
    if len(items) > MAX_BATCH:
        return [], [
            {"field": "(body)", "message": f"{len(items)} events; at most {MAX_BATCH} a request"}
        ]
    events: list[EventIn] = []
    errors: list[dict[str, Any]] = []
    for i, raw in enumerate(items):
        if not isinstance(raw, dict):
            errors.append({"index": i, "field": "(event)", "message": "an event is a JSON object"})
            continue
        index = i if isinstance(data, list) else None
        problem = check(raw) if check is not None else None
        if problem:
            bad: dict[str, Any] = {"field": "(event)", "message": problem}
            if index is not None:
                bad["index"] = index
            if isinstance(raw.get("id"), str):
                bad["id"] = raw["id"]
            errors.append(bad)
            continue
        ev, errs = parse_one(raw, index)
        if ev is not None and latest is not None and ev.occurred_at > latest:
            item: dict[str, Any] = {"field": "occurred_at", "message": "is in the future"}
            if index is not None:
                item["index"] = index
            errs = [{**item, "id": ev.id}]
            ev = None
        if ev is not None:
            events.append(ev)
        errors.extend(errs)
    return events, errors


def openapi(base_path: str = "/api/v1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the events API."""
    event_schema = EventIn.model_json_schema(ref_template="#/components/schemas/{model}")
    which = {"index": {"type": "integer"}, "id": {"type": "string"}}  # event of a request
    error = {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        **which,
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
        "required": ["error"],
    }
    body = {
        "oneOf": [
            {"$ref": "#/components/schemas/Event"},
            {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Event"},
                "maxItems": MAX_BATCH,
            },
            {
                "type": "object",
                "properties": {
                    "events": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Event"},
                        "maxItems": MAX_BATCH,
                    }
                },
                "required": ["events"],
                "additionalProperties": False,
            },
        ]
    }
    result = {
        "type": "object",
        "properties": {
            "accepted": {"type": "integer", "description": "events stored now"},
            "duplicates": {"type": "integer", "description": "events whose id was seen before"},
            "rejected": {"type": "integer", "description": "events refused (see their errors)"},
            "results": {
                "type": "array",
                "description": "every event of the request, by its index",
                "items": {
                    "type": "object",
                    "properties": {
                        **which,
                        "status": {
                            "type": "string",
                            "enum": ["accepted", "duplicate", "rejected"],
                        },
                        "errors": error["properties"]["errors"],  # type: ignore[index]
                    },
                },
            },
            "transitions": {"type": "integer", "description": "stage changes these caused"},
        },
    }

    def resp(desc: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": desc, "content": {"application/json": {"schema": schema}}}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Concierge events API",
            "version": "1",
            "description": (
                "The shop tells Concierge what its customers do. Sign the raw request body with "
                "HMAC-SHA256 and the shared secret CONCIERGE_EVENTS_SECRET and send the hex digest "
                "as `X-Concierge-Signature: sha256=<hex>`. Events are idempotent by `id`; their "
                "order is taken from `occurred_at`, not from arrival."
            ),
        },
        "paths": {
            f"{base_path}/events": {
                "post": {
                    "summary": "Send one event or a batch (up to 1000)",
                    "operationId": "postEvents",
                    "security": [{"signature": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": body}},
                    },
                    "responses": {
                        "200": resp("Stored (duplicates are reported, not stored twice)", result),
                        "207": resp(
                            "Some events rejected (each result says which and why); "
                            "the others stored",
                            result,
                        ),
                        "400": resp("The body is not JSON", error),
                        "401": resp("Missing or wrong signature", error),
                        "413": resp("The body is too large", error),
                        "415": resp("The body is not application/json", error),
                        "422": resp("No valid event in the request: nothing was stored", error),
                        "503": resp("The events API is off (no CONCIERGE_EVENTS_SECRET)", error),
                    },
                }
            }
        },
        "components": {
            "schemas": {"Event": event_schema},
            "securitySchemes": {
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Concierge-Signature",
                    "description": "sha256=<hex HMAC-SHA256 of the raw body, key CONCIERGE_EVENTS_SECRET>",
                }
            },
        },
    }
