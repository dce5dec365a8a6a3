"""What the handoff feature is configured with (from the core settings and shop.yml)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.handoff.hours import WorkingHours


@dataclass
class HandoffSettings:
    staff_channel: str | None
    marker: str
    hours: WorkingHours
    sla: timedelta
    vip_attribute: str = "vip"
