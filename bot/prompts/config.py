"""Settings of the prompts feature: ``CONCIERGE_PROMPTS_*`` environment variables."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.content.durations import parse_duration
from bot.outreach.windows import Week, parse_optional_week
from bot.settings_base import Csv, load_section, parsed_by


def parse_cap(value: str) -> tuple[int, timedelta]:
    """``"2/7d"`` -> at most 2 per 7 days."""
    try:
        n, per = value.split("/", 1)
        count = int(n)
        window = parse_duration(per)
    except ValueError:
        raise ValueError(f"cap {value!r}: use COUNT/DURATION, e.g. 2/7d") from None
    if count < 0 or window <= timedelta(0):
        raise ValueError(f"cap {value!r}: a count >= 0 per a positive duration")
    return count, window


def _parse_caps(caps: dict[str, str]) -> list[tuple[int, timedelta]]:
    return [parse_cap(cap) for cap in caps.values()]


def parse_quiet(value: str) -> Week | None:
    """``"21:00-08:00"`` (across midnight), ``"fri-sat 22:00-09:00; sun 20:00-10:00"``; ``""``,
    ``"off"`` or ``"none"``: no quiet hours (the grammar: docs/prompts.md, Time windows)."""
    return parse_optional_week(value, what="quiet hours")


class PromptSettings(BaseSettings):
    """Everything about proactive prompts an operator may want to change."""

    model_config = SettingsConfigDict(
        env_prefix="CONCIERGE_PROMPTS_", env_file=".env", extra="ignore", validate_default=True
    )

    enabled: bool = Field(default=True, description="Send proactive prompts at all")
    file: Path | None = Field(
        default=None,
        description="Prompt definitions (docs/prompts.md)",
        json_schema_extra={"doc_default": "<content>/flows/prompts.yml"},
    )
    marketing_cap: Annotated[str, parsed_by(parse_cap)] = Field(
        default="2/7d",
        description="Marketing prompts per contact across all prompts and channels (COUNT/DURATION)",
    )
    channel_caps: Annotated[dict[str, str], parsed_by(_parse_caps)] = Field(
        default_factory=dict,
        description='Marketing caps per channel, e.g. {"telegram": "1/1d"} (JSON)',
    )
    quiet_hours: Annotated[str, parsed_by(parse_quiet)] = Field(
        default="21:00-08:00", description="Local quiet hours: prompts wait until they end"
    )
    soft_opt_in: bool = Field(
        default=True,
        description="EU soft opt-in: existing customers get marketing without explicit consent "
        "(every marketing message carries an opt-out line either way)",
    )
    channel_order: Csv[str] = Field(
        default_factory=lambda: ["telegram", "slack", "web"],
        description="Channels tried after the contact's preferred one",
    )
    csat_suppress_below: int = Field(
        default=3,
        ge=1,
        le=6,
        description="A handoff rated below this (1-5) suppresses marketing prompts to the person",
    )
    csat_suppress_days: int = Field(
        default=30,
        ge=0,
        description="How many days such a rating suppresses marketing prompts",
    )
    scheduler: bool = Field(default=True, description="Run the scheduler loop in this process")
    interval: float = Field(default=15.0, gt=0, description="Seconds between scheduler rounds")
    sweep_interval: float = Field(
        default=300.0, gt=0, description="Seconds between sweeps (schedules, attributes, segments)"
    )
    horizon_hours: float = Field(
        default=36.0, gt=0, description="How far ahead sweeps schedule prompts"
    )
    batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Due prompts one scheduler round claims at once"
    )
    lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A claimed prompt not done within this many seconds may be claimed again",
    )
    review_url: str = Field(
        default="https://brewhaus.example/reviews", description="Where review buttons link"
    )
    referral_url: str = Field(
        default="https://brewhaus.example/invite", description="Where referral buttons link"
    )
    shop_name: str = Field(default="Brewhaus", description="{shop} in prompt texts")
    salt: str = Field(default="", description="Experiment salt (change to reshuffle groups)")

    @property
    def cap(self) -> tuple[int, timedelta]:
        return parse_cap(self.marketing_cap)

    @property
    def caps_by_channel(self) -> dict[str, tuple[int, timedelta]]:
        return {ch: parse_cap(c) for ch, c in self.channel_caps.items()}

    @property
    def quiet(self) -> Week | None:
        return parse_quiet(self.quiet_hours)


def load_prompt_settings(**overrides: Any) -> PromptSettings:
    """The settings from the environment; errors name the variable."""
    return load_section(PromptSettings, **overrides)
