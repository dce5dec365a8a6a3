"""Feature wiring: each feature module offers ``setup(runtime)``; this calls them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.runtime import Runtime


def setup_features(runtime: Runtime) -> None:
    """Register every feature's policies, signal receivers and background tasks."""
    # one line per feature, e.g.:
    # from bot.handoff.service import setup as handoff; handoff(runtime)
    from bot.handoff import setup as handoff
    from bot.internal import setup as internal
    from bot.lifecycle import setup as lifecycle
    from bot.privacy import setup as privacy
    from bot.prompts import setup as prompts
    from bot.staff import setup as staff
    from bot.stats import setup as stats

    handoff(runtime)

    lifecycle(runtime)

    internal(runtime)

    prompts(runtime)

    privacy(runtime)

    staff(runtime)

    stats(runtime)
