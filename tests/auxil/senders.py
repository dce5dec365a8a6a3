"""Channels for a runtime built without the app: what each product channel can do.

A bare :class:`~bot.runtime.Runtime` (no ``channels.app``) has no senders, so no channel that
can write first: flows, prompts and notices would find nobody to write to. These recorders
declare the real channels' capabilities (imported from the adapters) and keep what the
delivery worker hands them, without a network.
"""

from __future__ import annotations

from bot.runtime import Runtime
from bot.types import Capabilities, Delivery, SendResult


class Recorder:
    """A sender that keeps its deliveries (its channel's declared capabilities)."""

    def __init__(self, channel: str, capabilities: Capabilities) -> None:
        self.channel = channel
        self.capabilities = capabilities
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery) -> SendResult:
        self.sent.append(delivery)
        return SendResult(platform_message_id=f"{self.channel}:{delivery.outbox_id}")


def product_capabilities() -> dict[str, Capabilities]:
    from channels import slack, telegram
    from channels.web import chat

    return {
        chat.CHANNEL: chat.CAPABILITIES,
        telegram.CHANNEL: telegram.CAPABILITIES,
        slack.CHANNEL: slack.CAPABILITIES,
    }


def add_channels(rt: Runtime, *channels: str) -> dict[str, Recorder]:
    """Register a recorder for each product channel (all of them when none are named)."""
    caps = product_capabilities()
    out = {}
    for name in channels or tuple(caps):
        out[name] = Recorder(name, caps[name])
        rt.add_sender(out[name])
    return out
