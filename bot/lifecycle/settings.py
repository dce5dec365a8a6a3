"""Settings of the lifecycle and flows feature: ``CONCIERGE_LIFECYCLE_*`` variables.

The events API secret is the foundation's ``CONCIERGE_EVENTS_SECRET``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.content.durations import parse_duration
from bot.settings_base import load_section


class LifecycleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONCIERGE_LIFECYCLE_", env_file=".env", extra="ignore"
    )

    sweep_interval: float = Field(
        default=3600.0, gt=0, description="Seconds between inactivity sweeps"
    )
    sweep_chunk: int = Field(
        default=50_000, ge=100, description="Contacts per sweep transaction (id range)"
    )
    due_interval: float = Field(
        default=5.0, gt=0, description="Seconds between checks for flows whose wait ran out"
    )
    flow_expire_after: timedelta = Field(
        default=timedelta(days=30), description="Open flows nobody touched this long are dropped"
    )
    event_trigger_within: timedelta = Field(
        default=timedelta(days=3),
        description="Event and stage triggers ignore events older than this (backfills)",
    )
    future_tolerance: timedelta = Field(
        default=timedelta(minutes=10), description="How far in the future occurred_at may be"
    )
    max_body_bytes: int = Field(
        default=4_000_000, ge=1024, description="Largest request body the events API takes"
    )
    link_secret: str | None = Field(
        default=None,
        description="Signs Telegram deep-link tokens (default: CONCIERGE_EVENTS_SECRET)",
    )
    link_ttl_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days a token of `concierge lifecycle link-token` stays valid (default of --days)",
    )

    @field_validator("flow_expire_after", "event_trigger_within", "future_tolerance", mode="before")
    @classmethod
    def _duration(cls, v: object) -> timedelta:
        if isinstance(v, timedelta):
            return v
        return parse_duration(v)


def load_lifecycle_settings(**overrides: Any) -> LifecycleSettings:
    """The settings from the environment; errors name the variable."""
    return load_section(LifecycleSettings, **overrides)
