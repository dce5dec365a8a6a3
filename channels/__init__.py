"""Thin channel adapters: they translate platform traffic to ``bot.types`` and back."""
