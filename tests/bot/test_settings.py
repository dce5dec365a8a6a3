"""One ``Settings`` with each feature's section nested in it: read from the environment once,
under the same variable names as ever, or made in code (then nothing reads the environment)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.internal.config import InternalSettings
from bot.lifecycle.settings import LifecycleSettings
from bot.prompts import service_of as prompts_of
from bot.prompts.config import PromptSettings
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError, load_settings


def test_the_sections_read_their_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCIERGE_LIFECYCLE_SWEEP_INTERVAL", "12")
    monkeypatch.setenv("CONCIERGE_PROMPTS_QUIET_HOURS", "22:00-07:00")
    monkeypatch.setenv("CONCIERGE_INTERNAL_ENABLED", "false")
    s = load_settings(_env_file=None)
    assert s.lifecycle.sweep_interval == 12
    assert s.prompts.quiet_hours == "22:00-07:00"
    assert s.internal.enabled is False


def test_a_bad_value_in_a_section_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCIERGE_LIFECYCLE_SWEEP_INTERVAL", "-1")
    with pytest.raises(SettingsError, match="CONCIERGE_LIFECYCLE_SWEEP_INTERVAL"):
        load_settings(_env_file=None)


def test_a_bad_section_given_in_code_names_the_variable_too() -> None:
    with pytest.raises(SettingsError, match="CONCIERGE_PROMPTS_QUIET_HOURS"):
        load_settings(_env_file=None, prompts={"quiet_hours": "soon"})


def test_a_runtime_configured_in_code_does_not_read_the_environment(
    sqlite_url: str, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        sqlite_url,
        prompts=PromptSettings.model_validate({"scheduler": False, "quiet_hours": "21:00-08:00"}),
        lifecycle=LifecycleSettings.model_validate({"flow_expire_after": "2d"}),
        internal=InternalSettings.model_validate({"enabled": False}),
    )
    # set up after the settings were made: nothing of this may reach the features
    monkeypatch.setenv("CONCIERGE_PROMPTS_ENABLED", "false")
    monkeypatch.setenv("CONCIERGE_PROMPTS_QUIET_HOURS", "not a time")
    monkeypatch.setenv("CONCIERGE_INTERNAL_ENABLED", "true")
    monkeypatch.setenv("CONCIERGE_LIFECYCLE_FLOW_EXPIRE_AFTER", "also bad")
    rt = Runtime(settings, start_worker=False)
    prompts = prompts_of(rt)
    assert prompts.config.quiet_hours == "21:00-08:00" and prompts.config.scheduler is False
    from bot.lifecycle.service import service_of as lifecycle_of

    assert lifecycle_of(rt).settings.flow_expire_after == timedelta(days=2)
    with pytest.raises(LookupError):
        from bot.internal import service_of as internal_of

        internal_of(rt)
