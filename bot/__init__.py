"""Concierge: the channel-neutral core (engine, storage, NLU, flows, delivery)."""

__version__ = "0.1.0"
