"""The catalog model: :class:`CatalogItem`, what the shop says about a product.

Events say what shoppers did with an item id; the catalog says what that item is (title,
category, tags, price, whether it can be sold), which the recommender uses for reasons,
filters and cold-start similarity.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

import attrs

from recsdk.errors import InvalidEvent, InvalidItem
from recsdk.events import _SURROGATES, _kind, _to_id, _to_json_object, _to_number, check_id

__all__ = ["CatalogItem"]

MAX_TITLE_LENGTH: Final = 1024
MAX_TAGS: Final = 100

_UPDATABLE: Final = ("title", "category", "tags", "price", "available", "attributes")


@contextmanager
def _as_item_error() -> Iterator[None]:
    """Report the shared field checks' errors as :class:`InvalidItem`."""
    try:
        yield
    except InvalidEvent as exc:
        raise InvalidItem(exc.field, exc.reason) from None


@attrs.frozen
class CatalogItem:
    """One product of the shop's catalog.

    Parameters
    ----------
    item_id:
        The id events use for this product.
    title, category, tags, price:
        What it is; used for reasons ("because you viewed <title>"), filters and cold start.
    available:
        False for products that cannot be sold now: they are never recommended.
    attributes:
        Anything else, as a JSON object (at most 32 KB).
    created_at, updated_at:
        Set by the store; ignored when upserting.
    """

    item_id: str
    title: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    price: float | None = None
    available: bool = True
    attributes: dict[str, Any] = attrs.field(factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_dict(cls, data: object) -> CatalogItem:
        """Validate a catalog item given as a dict; raise :class:`InvalidItem` if it is bad."""
        return cls(**_validated_fields(data))

    def to_dict(self) -> dict[str, Any]:
        """Return the item as a JSON-ready dict (times as ISO 8601 strings)."""
        out = attrs.asdict(self, recurse=False)
        out["tags"] = list(self.tags)
        for name in ("created_at", "updated_at"):
            moment = out.pop(name)
            if moment is not None:
                out[name] = moment.isoformat().replace("+00:00", "Z")
        return out


def _validated_fields(data: object) -> dict[str, Any]:
    """Check a dict of catalog fields and return them normalized, only those given."""
    if isinstance(data, CatalogItem):
        return {name: getattr(data, name) for name in ("item_id", *_UPDATABLE)}
    if not isinstance(data, Mapping):
        raise InvalidItem("item", f"must be a JSON object, not {_kind(data)}")
    unknown = sorted(set(map(str, data)) - {"item_id", *_UPDATABLE})
    if unknown:
        raise InvalidItem(unknown[0], "is not a field of a catalog item; use 'attributes'")
    with _as_item_error():
        fields: dict[str, Any] = {"item_id": check_id("item_id", data.get("item_id"))}
        if "title" in data:
            fields["title"] = _to_title(data["title"])
        if "category" in data:
            fields["category"] = _to_id("category", data["category"])
        if "tags" in data:
            fields["tags"] = _to_tags(data["tags"])
        if "price" in data:
            fields["price"] = _to_number("price", data["price"], minimum=0.0, inclusive=True)
        if "available" in data:
            fields["available"] = _to_available(data["available"])
        if "attributes" in data:
            fields["attributes"] = _to_json_object("attributes", data["attributes"])
    return fields


def _to_title(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidItem("title", f"must be a string, not {_kind(value)}")
    if len(value) > MAX_TITLE_LENGTH:
        raise InvalidItem(
            "title", f"is {len(value)} characters long; the limit is {MAX_TITLE_LENGTH}"
        )
    if "\x00" in value:  # PostgreSQL cannot store it
        raise InvalidItem("title", "contains a NUL character")
    if _SURROGATES.search(value):  # no database can encode it
        raise InvalidItem("title", "is not valid Unicode (a lone surrogate)")
    return value


def _to_tags(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise InvalidItem("tags", f"must be a list of strings, not {_kind(value)}")
    if len(value) > MAX_TAGS:
        raise InvalidItem("tags", f"has {len(value)} tags; the limit is {MAX_TAGS}")
    tags = tuple(_to_id("tags", tag) for tag in value)
    return tuple(dict.fromkeys(tag for tag in tags if tag is not None))


def _to_available(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidItem("available", f"must be true or false, not {_kind(value)}")
    return value
