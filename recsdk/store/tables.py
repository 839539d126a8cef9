"""The store's SQLAlchemy Core tables, and the schema version they make up.

Every table is prefixed ``recsdk_`` so the store can live inside a shop's own database.
Strings come in from outside and are interned to integer ids in dictionary tables
(``recsdk_users``, ``recsdk_items``); events hold only those integers, so the engine reads
compact integer arrays and never joins strings. Times are integer milliseconds since the
epoch (UTC) in every table: compact, fast to compare, the same on every database.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite

from recsdk.events import MAX_ID_LENGTH

SCHEMA_VERSION: Final = 2
"""The version of the tables below; bump it, with a migration, whenever they change.

Version 2 added ``recsdk_erasures``; a version 1 database gains it when a store opens it.
"""

metadata = sa.MetaData()


class _Utf8Bytes(sa.TypeDecorator[str]):
    """Text kept as UTF-8 bytes, so that it compares byte for byte.

    MySQL's and MariaDB's text collations fold case and ignore trailing spaces, which would
    make "SKU-1" and "sku-1 " one item; their binary strings compare exactly.
    """

    impl = mysql.VARBINARY(4 * MAX_ID_LENGTH)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> bytes | None:
        return None if value is None else value.encode("utf-8")

    def process_result_value(self, value: object, dialect: sa.Dialect) -> str | None:
        return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else None


ExternalId = sa.String(MAX_ID_LENGTH).with_variant(_Utf8Bytes(), "mysql", "mariadb")

# A UUID as its 16 bytes: a third of the text form, so a smaller and faster unique index.
EventUuid = sa.LargeBinary(16).with_variant(mysql.BINARY(16), "mysql", "mariadb")

# SQLite keeps a NUMERIC value that is a whole number as an integer, which it reads back
# several times faster than a REAL; elsewhere a plain double.
Amount = sa.Float().with_variant(sqlite.NUMERIC(asdecimal=False), "sqlite")

# SQLite makes an INTEGER PRIMARY KEY the rowid; a BIGINT one would be a second index.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

JsonText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

schema_version = sa.Table(
    "recsdk_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("installed_at", sa.BigInteger, nullable=False),
)

users = sa.Table(
    "recsdk_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("external_id", ExternalId, nullable=False),
    sa.Column("anonymous", sa.Boolean, nullable=False),
    sa.UniqueConstraint("external_id", "anonymous", name="uq_recsdk_users_external_id"),
)
"""Who did things: the shop's user ids and visitors' anonymous ids, interned to integers."""

items = sa.Table(
    "recsdk_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("external_id", ExternalId, nullable=False, unique=True),
)
"""Every item id seen in an event or the catalog, interned to an integer."""

SERVED_COLUMNS: Final = ("item_ix", "type", "value", "quantity", "price", "order_id")
"""Columns of a shopper's events that requests read, besides ``user_ix`` and ``ts``."""

events = sa.Table(
    "recsdk_events",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("event_id", EventUuid, nullable=False, unique=True),
    sa.Column("type", sa.SmallInteger, nullable=False),
    sa.Column("custom_type", sa.String(64)),
    # No foreign keys on the three ids below: the store takes them from the dictionary
    # tables in the same transaction, and checking each row again cost a quarter of the
    # ingest speed on SQLite (benchmarks/bench_store.py).
    # The subject: the user when known, else the anonymous visitor.
    sa.Column("user_ix", sa.Integer, nullable=False),
    # The visitor's anonymous id, when the event carried one beside a user_id.
    sa.Column("anonymous_ix", sa.Integer),
    sa.Column("item_ix", sa.Integer),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.BigInteger, nullable=False),
    sa.Column("quantity", Amount),
    sa.Column("price", sa.Float),
    sa.Column("currency", sa.String(3)),
    sa.Column("value", Amount),
    sa.Column("order_id", ExternalId),
    sa.Column("session_id", ExternalId),
    sa.Column("rec_id", ExternalId),
    sa.Column("properties", JsonText),
    sa.Column("context", JsonText),
    # A shopper's history, as requests read it (store/serving.py), from the index alone:
    # reading each row from the table instead, where a shopper's events lie scattered,
    # cost a recommendation ~110 us more on SQLite (benchmarks/bench_serving.py).
    sa.Index("ix_recsdk_events_user_ts", "user_ix", "ts", *SERVED_COLUMNS),
    sa.Index("ix_recsdk_events_item_ts", "item_ix", "ts"),
)
"""One row per event, stored once per ``event_id`` (a retried event is a duplicate)."""

catalog = sa.Table(
    "recsdk_catalog",
    metadata,
    sa.Column("item_ix", sa.Integer, sa.ForeignKey(items.c.id), primary_key=True),
    sa.Column("title", sa.String(1024)),
    sa.Column("category", sa.String(MAX_ID_LENGTH)),
    sa.Column("tags", JsonText),
    sa.Column("price", sa.Float),
    sa.Column("available", sa.Boolean, nullable=False),
    sa.Column("attributes", JsonText),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_recsdk_catalog_category", "category"),
)
"""What the shop sells: one row per item the shop described with ``upsert_items``."""

identity_links = sa.Table(
    "recsdk_identity_links",
    metadata,
    sa.Column("anonymous_ix", sa.Integer, sa.ForeignKey(users.c.id), primary_key=True),
    sa.Column("user_ix", sa.Integer, sa.ForeignKey(users.c.id), nullable=False, index=True),
    sa.Column("linked_at", sa.BigInteger, nullable=False),
)
"""Which user an anonymous visitor turned out to be (first link wins)."""

erasures = sa.Table(
    "recsdk_erasures",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("erased_at", sa.BigInteger, nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),  # "shopper" or "before"
    sa.Column("events", sa.BigInteger, nullable=False),
)
"""A log of erasures that says when and how many events, never whose: a model fitted
before the newest row may still hold erased events, so recommenders fit afresh."""

ADDED_IN: Final = {2: (erasures,)}
"""The tables each schema version added, which opening an older database creates."""
