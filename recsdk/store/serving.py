"""The store's lean reads for serving recommendations: one statement each, built once.

A recommendation request reads one shopper's recent item events; a web worker that starts
reads the item id map and the catalog; a refresh reads what is new since a watermark.
These statements are written once here, as SQLAlchemy Core for every database and, for
SQLite's request-time read, as plain SQL text run on a pooled driver connection: that
spares SQLAlchemy's per-statement work, most of the cost of so small a query.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from recsdk.events import TypeCode
from recsdk.store import tables as t

__all__ = [
    "BASKET_ROWS",
    "ITEM_EVENT_COLUMNS",
    "SQLITE_ITEM_EVENT_ROWS",
    "item_event_rows_query",
]

ITEM_EVENT_COLUMNS: Final = ("item_ix", "type", "ts", "value", "quantity", "price", "order_id")
"""The columns of :meth:`EventStore.item_event_rows`' rows, in order."""


def item_event_rows_query() -> sa.Select[tuple[int, int, int, float, float, float, str]]:
    """A shopper's latest item events, with ``user_id``, ``anonymous_id``, ``limit`` binds.

    The shopper is everyone the two ids name: the user, the anonymous visitor, the user an
    anonymous id was linked to, and every anonymous id linked to either user.
    """
    users, links, e = t.users.c, t.identity_links.c, t.events.c
    me = (
        sa.select(users.id)
        .where(
            sa.or_(
                sa.and_(
                    users.external_id == sa.bindparam("user_id"), users.anonymous == sa.false()
                ),
                sa.and_(
                    users.external_id == sa.bindparam("anonymous_id"), users.anonymous == sa.true()
                ),
            )
        )
        .cte("me")
    )
    owners = (
        sa.select(sa.func.coalesce(links.user_ix, me.c.id).label("id"))
        .select_from(me.outerjoin(t.identity_links, links.anonymous_ix == me.c.id))
        .cte("owners")
    )
    linked = sa.select(links.anonymous_ix).where(links.user_ix.in_(sa.select(owners.c.id)))
    subjects = sa.union(sa.select(owners.c.id), linked)
    return (
        sa.select(*(e[name] for name in ITEM_EVENT_COLUMNS))
        .where(e.user_ix.in_(subjects), e.item_ix.is_not(None))
        .order_by(e.ts.desc(), e.id.desc())
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


# The same statement as item_event_rows_query(), for SQLite's driver (qmark parameters:
# user_id, anonymous_id, limit). tests/test_store_serving.py checks that both agree.
SQLITE_ITEM_EVENT_ROWS: Final = f"""
WITH me AS (
    SELECT id FROM {t.users.name} WHERE external_id = ?1 AND anonymous = 0
    UNION ALL SELECT id FROM {t.users.name} WHERE external_id = ?2 AND anonymous = 1
),
owners AS (
    SELECT coalesce(
        (SELECT l.user_ix FROM {t.identity_links.name} AS l WHERE l.anonymous_ix = me.id), me.id
    ) AS id
    FROM me
)
SELECT {", ".join(ITEM_EVENT_COLUMNS)} FROM {t.events.name}
WHERE user_ix IN (
    SELECT id FROM owners
    UNION ALL SELECT l.anonymous_ix FROM {t.identity_links.name} AS l
    WHERE l.user_ix IN (SELECT id FROM owners)
) AND item_ix IS NOT NULL
ORDER BY ts DESC, id DESC
LIMIT ?3
"""

_BASKET_TYPES: Final = (int(TypeCode.add_to_cart), int(TypeCode.purchase))


def _basket_rows() -> sa.Select[tuple[str | None, str | None, int]]:
    e = t.events.c
    purchase_in_order = sa.and_(e.type == int(TypeCode.purchase), e.order_id.is_not(None))
    in_session = sa.and_(e.type.in_(_BASKET_TYPES), e.session_id.is_not(None))
    return (
        sa.select(e.order_id, e.session_id, e.item_ix)
        .where(
            e.id > sa.bindparam("lower", type_=sa.BigInteger),
            e.id <= sa.bindparam("upper", type_=sa.BigInteger),
            e.item_ix.is_not(None),
            sa.or_(purchase_in_order, in_session),
        )
        .order_by(e.id)
    )


BASKET_ROWS: Final = _basket_rows()
"""Order lines and session cart events in an id range (``lower``, ``upper`` binds)."""
