"""Retention and review prompts by lifecycle stage, with guard rails and experiments (issue 7).

The shop declares prompts in ``flows/prompts.yml`` (texts by response name in
``nlu_data/<lang>/responses.yml``); shop events and stage changes (signals of the lifecycle
feature) schedule them; the scheduler sends them when due through the outbox, after the guard
rails (consent, opt-out, caps, quiet hours, suppression, channel choice), and records every
send, skip and experiment exposure for ``concierge report prompts``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.prompts.service import PromptService
    from bot.runtime import Runtime


def setup(runtime: Runtime) -> None:
    """Wire the feature into a runtime: signal receivers, NPS policy, scheduler loop."""
    from bot.prompts.policies import nps_policy, stop_hook
    from bot.prompts.service import PromptService

    config = runtime.settings.prompts
    if not config.enabled:
        return
    svc = PromptService(runtime, config)
    runtime.register(svc)
    runtime.signals.event_recorded.connect(svc.on_event)
    runtime.signals.stage_changed.connect(svc.on_stage, many=svc.on_stage_many)
    runtime.signals.opted_out.connect(svc.on_opted_out)
    runtime.engine.add_policy("prompts_nps", nps_policy(svc), priority=45)
    runtime.engine.add_after_turn(stop_hook)

    async def load() -> None:
        _ = svc.book  # a broken prompts file fails the start with file:line

    def scheduling() -> bool:
        return svc.config.scheduler

    runtime.on_start(load)
    # sweeps first: what they schedule for now goes out in the same pass
    runtime.jobs.add(
        "prompt sweeps",
        svc.sweep,
        every=lambda: svc.config.sweep_interval,
        enabled=scheduling,
    )
    runtime.jobs.add("prompts", svc.round, every=lambda: svc.config.interval, enabled=scheduling)


def service_of(runtime: Runtime) -> PromptService:
    """The runtime's prompts service (``LookupError`` when disabled)."""
    from bot.prompts.service import PromptService

    return runtime.service(PromptService, "prompts are disabled (CONCIERGE_PROMPTS_ENABLED)")


def configure(runtime: Runtime, **overrides: Any) -> PromptService:
    """Replace the service's settings (tests, embedding): keyword arguments of PromptSettings."""
    svc = service_of(runtime)
    svc.configure(**overrides)
    return svc
