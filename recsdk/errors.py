"""The one exception tree of recsdk: everything it raises on purpose is a :class:`RecsdkError`.

::

    RecsdkError
    ├── ValidationError          bad data; names the field and the reason
    │   ├── InvalidEvent
    │   └── InvalidItem
    ├── StoreError               the database cannot be used as asked
    │   └── SchemaMismatch
    └── NotFitted                a model was asked for results before it was fitted
"""

from __future__ import annotations

__all__ = [
    "InvalidEvent",
    "InvalidItem",
    "NotFitted",
    "RecsdkError",
    "SchemaMismatch",
    "StoreError",
    "ValidationError",
]


class RecsdkError(Exception):
    """Base class of every error recsdk raises on purpose."""


class ValidationError(RecsdkError, ValueError):
    """Data failed validation.

    Attributes
    ----------
    field:
        The wire-format name of the offending field (``"item_id"``, ``"properties"``...),
        or ``"event"`` / ``"item"`` when the problem is with the record as a whole.
    reason:
        What is wrong with it, in words meant for the developer who sent it.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

    def __reduce__(self) -> tuple[type[ValidationError], tuple[str, str]]:
        return (type(self), (self.field, self.reason))


class InvalidEvent(ValidationError):
    """An event failed validation."""


class InvalidItem(ValidationError):
    """A catalog item failed validation."""


class StoreError(RecsdkError):
    """The event store cannot do what was asked (misconfiguration, unusable database)."""


class SchemaMismatch(StoreError):
    """The database holds a recsdk schema version this version of recsdk does not know."""


class NotFitted(RecsdkError, RuntimeError):
    """A model was asked for results before it was fitted or loaded."""
