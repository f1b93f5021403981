"""Alembic environment for our tables; the caller passes its connection in ``config.attributes``."""
from __future__ import annotations

from alembic import context

from gradebook.store.db import VERSION_TABLE
from gradebook.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - migrations always run through gradebook.store.db.upgrade
    raise RuntimeError("run migrations through gradebook.store.db.upgrade()")
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
