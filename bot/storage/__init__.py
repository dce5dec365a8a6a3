"""Storage: SQLAlchemy 2 (async) models, database handle and Alembic migrations."""

from bot.storage.db import Database, DatabaseError
from bot.storage.models import (
    Base,
    Consent,
    Contact,
    Conversation,
    Identity,
    Message,
    OutboxMessage,
)

__all__ = [
    "Base",
    "Consent",
    "Contact",
    "Conversation",
    "Database",
    "DatabaseError",
    "Identity",
    "Message",
    "OutboxMessage",
]
