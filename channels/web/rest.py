"""Rasa's REST channel (``POST /webhooks/rest/webhook``) and other small HTTP endpoints."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.runtime import Runtime
from bot.types import Inbound

MAX_DEPTH = 32  # JSON nested deeper than this is refused (no endpoint needs more)


def bad_request(
    reason: str, status: int = 400, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """The JSON answer to a request refused: ``{"error": reason}``, with ``errors`` (one per
    problem) when there are any."""
    body: dict[str, Any] = {"error": reason}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def loads(body: bytes | str, what: str = "body", *, text: bool = True) -> Any:
    """``json.loads`` whose every failure is a :class:`ValueError` with a reason for a 4xx:
    not JSON, nested too deeply, or holding text no database column can keep
    (:func:`text_problem`)."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} is not valid JSON: {e}") from None
    except RecursionError:
        raise ValueError(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    problem = text_problem(data, text=text)
    if problem:
        raise ValueError(f"{what}: {problem}")
    return data


def text_problem(data: Any, where: str = "$", *, text: bool = True) -> str | None:
    """Why ``data`` (parsed JSON) cannot be stored, or ``None``: nested deeper than
    :data:`MAX_DEPTH`, a NUL character (PostgreSQL's text and JSON columns refuse it, so
    SQLite refuses it too: the same answer on both), or an unpaired UTF-16 surrogate such as
    ``"\\ud800"`` (not Unicode text: it cannot be encoded as UTF-8). Iterative: no
    recursion however deep the input. ``text=False``: the depth only."""
    stack: list[tuple[Any, str, int]] = [(data, where, 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels at {path}"
        if isinstance(value, str) and text:
            reason = _bad_text(value)
            if reason:
                return f"{reason} at {path}"
        elif isinstance(value, dict):
            for k, v in value.items():
                reason = _bad_text(k) if text else None
                if reason:
                    return f"{reason} in a key at {path}"
                stack.append((v, f"{path}.{k}", depth + 1))
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def _bad_text(s: str) -> str | None:
    if "\x00" in s:
        return "text contains a NUL character (\\u0000)"
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return "text contains an unpaired UTF-16 surrogate (not valid Unicode)"
    return None


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body, or raise :class:`ValueError` with a reason fit for a 4xx."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise RequestTooLarge(f"body is {length} bytes; the limit is {max_bytes}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise RequestTooLarge(f"body is larger than {max_bytes} bytes")
    if not body:
        raise ValueError("empty body; send a JSON object")
    return loads(body)


class RequestTooLarge(ValueError):
    pass


class RestChannel:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def webhook(self, request: Request) -> Response:
        limit = self.runtime.settings.max_message_bytes
        try:
            data = await read_json(request, limit * 2 + 4096)
        except RequestTooLarge as e:
            return bad_request(str(e), 413)
        except ValueError as e:
            return bad_request(str(e))
        if not isinstance(data, dict):
            return bad_request("body must be a JSON object with 'sender' and 'message'")
        sender, message = data.get("sender"), data.get("message")
        metadata = data.get("metadata") or {}
        if not isinstance(sender, str) or not sender.strip() or len(sender) > 255:
            return bad_request("'sender' must be a non-empty string of at most 255 characters")
        if not isinstance(message, str) or not message.strip():
            return bad_request("'message' must be a non-empty string")
        if not isinstance(metadata, dict):
            return bad_request("'metadata' must be an object")
        size = len(message.encode("utf-8"))
        if size > limit:
            return bad_request(f"'message' is {size} bytes; the limit is {limit}", 413)
        payload = message if message.startswith("/") else None
        lang = metadata.get("language") if isinstance(metadata.get("language"), str) else None
        result = await self.runtime.engine.handle(
            Inbound(
                channel="rest",
                external_id=sender,
                text=message,
                payload=payload,
                language=lang,
                metadata=metadata,
            ),
            deliver_inline=True,
        )
        out = []
        for r in result.replies:
            item: dict[str, Any] = {"recipient_id": sender, "text": r.text}
            if r.buttons:
                item["buttons"] = [b.to_dict() for b in r.buttons]
            out.append(item)
        return JSONResponse(out)
