"""Human handoff: hard questions go to staff (Slack thread or web inbox) and come back."""

from bot.handoff.service import HandoffService, service_of, setup

__all__ = ["HandoffService", "service_of", "setup"]
