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

import math
import operator

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


def checked_int(field: str, value: object, *, minimum: int) -> int:
    """``value`` as an ``int`` when it is an integer (numpy's too, never a bool) of at
    least ``minimum``; else a :class:`ValidationError` naming ``field``."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = None
    if number is None or number < minimum:
        raise ValidationError(field, f"must be an integer >= {minimum}, not {value!r}")
    return number


def checked_number(
    field: str,
    value: object,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
) -> float:
    """``value`` as a finite ``float`` within the bounds given (``above``: exclusive);
    else a :class:`ValidationError` naming ``field``."""
    bounds = [
        f">= {minimum}" if minimum is not None else "",
        f"> {above}" if above is not None else "",
        f"<= {maximum}" if maximum is not None else "",
    ]
    wanted = " and ".join(b for b in bounds if b)
    reason = f"must be a number{' ' + wanted if wanted else ''}, not {value!r}"
    if isinstance(value, (bool, str, bytes)):
        raise ValidationError(field, reason)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationError(field, reason) from None
    if (
        not math.isfinite(number)
        or (minimum is not None and number < minimum)
        or (above is not None and number <= above)
        or (maximum is not None and number > maximum)
    ):
        raise ValidationError(field, reason)
    return number
