"""Storage: SQLAlchemy 2 (async) models, database handle and Alembic migrations."""
