"""The few statements that each database spells its own way: insert-or-skip and upsert."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

__all__ = ["insert_skipping_duplicates", "upsert"]


def insert_skipping_duplicates(table: sa.Table, dialect: sa.Dialect) -> sa.Insert:
    """An INSERT that silently skips rows whose unique key is already there.

    Its rowcount is the number of rows actually inserted, on every supported database.
    """
    if dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect.name in {"mysql", "mariadb"}:
        return sa.insert(table).prefix_with("IGNORE")
    return sa.insert(table).prefix_with("OR IGNORE")


def upsert(table: sa.Table, dialect: sa.Dialect, key: str, update: Sequence[str]) -> sa.Insert:
    """An INSERT that, where the row with that ``key`` exists, updates the ``update`` columns."""
    if dialect.name in {"mysql", "mariadb"}:
        my_insert = mysql.insert(table)
        return my_insert.on_duplicate_key_update(
            {name: my_insert.inserted[name] for name in update}
        )
    builder = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    statement = builder(table)
    return statement.on_conflict_do_update(
        index_elements=[key], set_={name: statement.excluded[name] for name in update}
    )
