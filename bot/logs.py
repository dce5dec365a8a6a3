"""Logging as ``concierge run`` sets it up: one format, secrets redacted from every line.

Libraries log what they see: httpx every request URL (Telegram's carry the bot token,
``.../bot<TOKEN>/getUpdates``), uvicorn's access log every path with its query (the widget's
``/ws/chat?token=<visitor token>``), slack-bolt a rejected request's signature and body.
:class:`RedactingFilter` sits on every handler of the root logger (handler filters see the
records of every logger that propagates there, uvicorn's included: ``concierge run`` gives
uvicorn no handlers of its own) and rewrites each record before it is written: the configured
secrets by value, and anything shaped like a token, a signature or a credential in a query,
by pattern. A line longer than :data:`MAX_CHARS` is cut (a 4 MB body is not a log line).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings

MAX_CHARS = 2000
MASK = "<redacted>"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# (pattern, replacement): what a secret looks like wherever it turns up
PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Telegram bot tokens, in Bot API URLs (/bot123:ABC/getMe) or alone
    (re.compile(r"\b(bot)?\d{5,}:[A-Za-z0-9_-]{20,}"), r"\1" + MASK),
    # credentials in a query string or a form: ?token=..., &user_hash=...
    (
        re.compile(
            r"(?i)([?&;](?:token|user_hash|hash|signature|sig|secret|password|key|api_key"
            r"|access_token|code)=)[^&\s\"'#]+"
        ),
        r"\1" + MASK,
    ),
    # Slack tokens (bot, user, app-level, refresh)
    (re.compile(r"\bx(?:ox[abposer]|app)-[A-Za-z0-9-]+"), MASK),
    # request signatures: Slack's v0=<hex>, ours and GitHub's sha256=<hex>
    (re.compile(r"\b(v0|sha256)=[0-9a-fA-F]{32,}"), r"\1=" + MASK),
    # Authorization headers
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
]


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and its formatted traceback) without its secrets."""

    def __init__(self, secrets: Iterable[str | None] = (), max_chars: int = MAX_CHARS) -> None:
        super().__init__()
        # longest first, so a secret that contains another is masked whole; short values
        # ("", "1234") would mask ordinary words
        self.secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)
        self.max_chars = max_chars

    def redact(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, MASK)
        for pattern, repl in PATTERNS:
            text = pattern.sub(repl, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log what there is
            message = f"{record.msg!r} {record.args!r}"
        message = self.redact(message)
        if len(message) > self.max_chars:
            cut = len(message) - self.max_chars
            message = f"{message[: self.max_chars]}... [{cut} more characters not logged]"
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def secrets_of(settings: Settings) -> list[str | None]:
    """The configured values that must never reach a log."""
    return [
        settings.secret_key,
        settings.telegram_token,
        settings.telegram_webhook_secret,
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
        settings.events_secret,
        settings.web_identity_secret,
        settings.admin_password,
        settings.rasa_token,
        settings.metrics_token,
    ]


def open_private(path: Path) -> None:
    """Create ``path`` readable and writable by its owner only (0600), if it is missing; an
    existing file loses any group and other permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def setup_logging(settings: Settings) -> RedactingFilter:
    """The root logger for ``concierge run``: stderr, and ``CONCIERGE_LOG_FILE`` if set
    (created 0600), each handler behind a :class:`RedactingFilter`."""
    redactor = RedactingFilter(secrets_of(settings))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.log_file is not None:
        open_private(settings.log_file)
        handlers.append(logging.FileHandler(settings.log_file, encoding="utf-8"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        h.setFormatter(logging.Formatter(FORMAT))
        h.addFilter(redactor)
        root.addHandler(h)
    root.setLevel(settings.log_level.upper())
    return redactor
