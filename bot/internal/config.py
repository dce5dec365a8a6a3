"""Settings of the internal-updates feature: ``CONCIERGE_INTERNAL_*`` environment variables."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.outreach.windows import DAY_KEYS, parse_days, parse_span, weekday_index
from bot.settings_base import Csv, load_section, parsed_by

WEEKDAYS = DAY_KEYS  # mon..sun (Babel's English names; the window grammar's days)

DEFAULT_TOPICS: dict[str, list[str]] = {
    "launch": [
        "launch",
        "launches",
        "launch notes",
        "release notes",
        "product news",
        "new product",
    ],
    "numbers": ["numbers", "customer numbers", "metrics", "kpi", "figures"],
    "faq": ["faq", "faq topics", "new faq topics", "questions"],
    "onboarding": ["onboarding", "new hire tips", "tips"],
    "feedback": ["feedback", "surveys", "pulse"],
}


def parse_hours(value: str) -> tuple[time, time]:
    """``"09:00-17:30"`` -> (09:00, 17:30); ``"00:00-24:00"`` is the whole day (the window
    grammar of :mod:`bot.outreach.windows`, without days)."""
    try:
        return parse_span(value, wrap=False)
    except ValueError as e:
        problem = str(e).replace(
            "the end must come after the start", "the start must be before the end"
        )
        raise ValueError(f"working hours {problem}") from None


class InternalSettings(BaseSettings):
    """Everything about internal updates an operator may want to change."""

    model_config = SettingsConfigDict(
        env_prefix="CONCIERGE_INTERNAL_", env_file=".env", extra="ignore", validate_default=True
    )

    enabled: bool = Field(default=True, description="Send internal updates at all")
    weekly_cap: int = Field(default=3, ge=0, description="Updates per employee per 7 days")
    important_weekly_cap: int = Field(
        default=1, ge=0, description="'important' updates that may pass the weekly cap per 7 days"
    )
    digest_mode: bool = Field(
        default=True, description="Bundle low-priority updates into one weekly digest message"
    )
    digest_day: str = Field(default="fri", description="Weekday of the employee digest")
    digest_time: time = Field(default=time(15, 0), description="Local time of the digest")
    working_hours: Annotated[str, parsed_by(parse_hours)] = Field(
        default="09:00-17:00", description="Local working hours"
    )
    working_days: Csv[str] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"],
        description="Days updates are delivered (comma-separated mon..sun)",
    )
    calendar_file: Path | None = Field(
        default=None,
        description="Company dates (holidays, launches)",
        json_schema_extra={"doc_default": "<content>/updates/calendar.yml"},
    )
    timezone: str | None = Field(
        default=None,
        description="Company time zone",
        json_schema_extra={"doc_default": "CONCIERGE_DEFAULT_TIMEZONE"},
    )
    # Slack profile fields -> employee attributes: a standard profile key ("title") or the id
    # of a custom profile field ("Xf01ABCD").
    profile_fields: dict[str, str] = Field(
        default_factory=lambda: {"department": "department", "title": "title"},
        description="Employee attribute -> Slack profile key or custom field id (JSON)",
    )
    fetch_custom_fields: bool = Field(
        default=False, description="Call users.profile.get per user for custom profile fields"
    )
    slack_sync_hours: float = Field(
        default=6.0, ge=0, description="Sync people from Slack every N hours (0: only the CLI)"
    )
    pulse_min_group_size: int = Field(
        default=5, ge=1, description="Pulse results are shown only for groups at least this big"
    )
    topics: dict[str, list[str]] = Field(
        default_factory=lambda: dict(DEFAULT_TOPICS),
        description="Topics employees may subscribe to or mute, with the words that name them (JSON)",
    )
    new_hire_days: int = Field(
        default=30,
        ge=1,
        description="Employees who joined within this many days count as new hires",
    )
    team_digest: bool = Field(
        default=True, description="Create the weekly support & sales digest update"
    )
    team_digest_audience: str = Field(
        default="department:support, department:sales", description="Who gets the team digest"
    )
    team_digest_day: str = Field(default="mon", description="Weekday of the team digest")
    team_digest_time: time = Field(default=time(9, 0), description="Local time of the team digest")
    scheduler: bool = Field(default=True, description="Run the scheduler loop in this process")
    scheduler_interval: float = Field(
        default=30.0, gt=0, description="Seconds between scheduler rounds"
    )

    @field_validator("working_days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        return [WEEKDAYS[d] for d in sorted(parse_days(v))]  # mon, Monday, mon-fri

    @field_validator("digest_day", "team_digest_day")
    @classmethod
    def _day(cls, v: str) -> str:
        return WEEKDAYS[weekday_index(v)]

    @property
    def hours(self) -> tuple[time, time]:
        return parse_hours(self.working_hours)


def load_internal_settings(**overrides: Any) -> InternalSettings:
    """The settings from the environment; errors name the variable."""
    return load_section(InternalSettings, **overrides)
