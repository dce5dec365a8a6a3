"""Internal updates for employees in Slack (issue 8).

Employees and audiences, updates as files with a schedule, a company calendar, frequency caps
and a weekly digest, engagement tracking, pulse surveys, employee DMs, and a weekly support &
sales digest. Channel-neutral: ``channels.slack_internal`` syncs people from Slack, renders
Block Kit and turns reactions and button clicks into service calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.internal.service import InternalService
    from bot.runtime import Runtime

JOB = "internal updates"  # the scheduler's job in runtime.jobs


def setup(runtime: Runtime) -> None:
    """Wire the feature into a runtime: DM policy, update files on start, scheduler loop."""
    from bot.internal.dm import internal_policy
    from bot.internal.service import InternalService

    config = runtime.settings.internal
    if not config.enabled:
        return
    svc = InternalService(runtime, config)
    runtime.register(svc)
    runtime.engine.add_policy("internal", internal_policy(svc), priority=200)

    async def load_files() -> None:
        await svc.sync_files()

    runtime.on_start(load_files)
    runtime.jobs.add(
        JOB,
        svc.round,
        every=lambda: svc.config.scheduler_interval,
        enabled=lambda: svc.config.scheduler,
    )


def service_of(runtime: Runtime) -> InternalService:
    """The runtime's internal-updates service (``LookupError`` when disabled)."""
    from bot.internal.service import InternalService

    return runtime.service(
        InternalService, "internal updates are disabled (CONCIERGE_INTERNAL_ENABLED)"
    )


def configure(runtime: Runtime, **overrides: Any) -> InternalService:
    """Replace the service's settings (tests, embedding): keyword arguments of InternalSettings."""
    from bot.internal.config import InternalSettings

    svc = service_of(runtime)
    current = runtime.settings.internal.model_dump()
    svc.config = InternalSettings.model_validate({**current, **overrides})
    svc._calendar = None
    return svc
