"""Lifecycle engine and flows (issue 6): shop events move people through stages; flows
(onboarding tutorials, check-ins, lead capture) run per contact on whichever channel they use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.lifecycle.service import LifecycleService
    from bot.runtime import Runtime


def setup(runtime: Runtime) -> LifecycleService:
    """Load ``flows/`` (lifecycle, flows, texts), register policies, hooks and loops."""
    from bot.flows.content import load_content
    from bot.lifecycle.linking import LinkPolicy
    from bot.lifecycle.service import LifecycleService

    settings = runtime.settings
    content = load_content(
        settings.content_dir,
        strict=True,
        languages=settings.languages,
        responses=runtime.responses,  # the flow texts join the shop's responses here
    )
    svc = LifecycleService(runtime, content.lifecycle, content.book, settings.lifecycle)
    runtime.register(svc)
    engine = runtime.engine
    engine.add_policy("link", LinkPolicy(svc), priority=10)
    # before the handoff feature (20): "next" typed three times in a tutorial is progress, not
    # frustration; a flow lets go of what it cannot answer (and of conversations staff hold)
    engine.add_policy("flows", svc.runner.policy, priority=15)
    engine.add_prefetch(svc.runner.prefetch)
    engine.add_after_turn(svc.runner.after_turn)
    engine.add_after_turn(svc.followup_hook)
    jobs = runtime.jobs
    interval = svc.settings.sweep_interval
    jobs.add("lifecycle sweep", svc.sweep, every=interval, first_after=min(interval, 60.0))
    jobs.add("flows due", svc.runner.run_all_due, every=svc.settings.due_interval)
    return svc
