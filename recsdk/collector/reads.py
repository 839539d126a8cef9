"""The collector's read endpoints: recommendations, similar items and the tracker script.

- ``GET {prefix}/recommendations?user_id=&anonymous_id=&k=&category=&exclude=``
- ``GET {prefix}/similar/<item_id>?k=&category=&exclude=``
- ``GET {prefix}/recsdk.js``: the browser tracker shipped in the package

The lists come from a :class:`~recsdk.Recommender` given to the collector; without one
they answer 404. Every bad parameter gets a 400 that names it. Nothing here imports the
recommender: it is passed in, so a collector that only stores events stays light.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, Final, Protocol
from urllib.parse import parse_qs

from recsdk.errors import InvalidEvent, ValidationError
from recsdk.events import check_id

__all__ = [
    "MAX_K",
    "PARAMETERS",
    "BadParameter",
    "ListSource",
    "ScriptFile",
    "json_bytes",
    "parse_query",
    "read_list",
]

MAX_K: Final = 50
"""The longest list the endpoints give (a larger ``k`` is cut to it)."""

DEFAULT_K: Final = 10
MAX_EXCLUDED: Final = 200
PARAMETERS: Final = ("user_id", "anonymous_id", "k", "category", "exclude", "key")
SCRIPT: Final = "static/recsdk.min.js"
SCRIPT_MAX_AGE: Final = 3600


class ListSource(Protocol):
    """What the endpoints need of a :class:`~recsdk.Recommender`."""

    def recommend(
        self,
        user_id: str | None = ...,
        k: int = ...,
        *,
        anonymous_id: str | None = ...,
        category: str | None = ...,
        exclude: Iterable[str] | None = ...,
    ) -> Any: ...

    def similar_items(
        self,
        item_id: str,
        k: int = ...,
        *,
        category: str | None = ...,
        exclude: Iterable[str] | None = ...,
    ) -> Any: ...

    def invalidate(self, user_id: str | None = ..., anonymous_id: str | None = ...) -> None: ...


class BadParameter(Exception):
    """A query parameter (or the item in the path) that cannot be used; names it."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


def parse_query(query: str) -> dict[str, str]:
    """The query string's parameters (the first value of each); unknown names are ignored.

    Raises
    ------
    BadParameter
        If the query string is not UTF-8 or has too many fields.
    """
    try:
        fields = parse_qs(query, keep_blank_values=True, errors="strict", max_num_fields=50)
    except UnicodeDecodeError:
        raise BadParameter("query", "is not valid UTF-8") from None
    except ValueError:
        raise BadParameter("query", "has too many fields") from None
    return {name: values[0] for name, values in fields.items() if name in PARAMETERS}


def _k(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_K
    if not raw.isdigit() or int(raw) < 1:
        raise BadParameter(
            "k",
            f"must be a whole number of at least 1 (more than {MAX_K} give {MAX_K}), "
            f"not {raw[:20]!r}",
        )
    return min(int(raw), MAX_K)


def _id(parameter: str, raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    try:
        return check_id(parameter, raw)
    except InvalidEvent as error:
        raise BadParameter(parameter, error.reason) from None


def _excluded(raw: str | None) -> list[str]:
    names = [name for name in (raw or "").split(",") if name]
    if len(names) > MAX_EXCLUDED:
        raise BadParameter("exclude", f"names {len(names)} items; the limit is {MAX_EXCLUDED}")
    return [name for name in (_id("exclude", name) for name in names) if name is not None]


def read_list(source: ListSource, params: Mapping[str, str], item: str | None) -> dict[str, Any]:
    """The JSON answer of ``/recommendations`` (``item`` None) or ``/similar/<item>``.

    Raises
    ------
    BadParameter
        Naming the parameter that cannot be used.
    recsdk.errors.NotFitted
        When the recommender has nothing fitted yet.
    """
    k = _k(params.get("k"))
    category = _id("category", params.get("category"))
    exclude = _excluded(params.get("exclude"))
    try:
        if item is not None:
            checked = _id("item", item)
            if checked is None:
                raise BadParameter("item", "give an item id: /similar/<item_id>")
            found = source.similar_items(checked, k, category=category, exclude=exclude)
        else:
            user_id = _id("user_id", params.get("user_id"))
            anonymous_id = _id("anonymous_id", params.get("anonymous_id"))
            found = source.recommend(
                user_id, k, anonymous_id=anonymous_id, category=category, exclude=exclude
            )
    except ValidationError as error:  # the recommender's own checks, named like the query
        raise BadParameter(_PARAMETER_OF.get(error.field, error.field), error.reason) from None
    return found.to_dict()  # type: ignore[no-any-return]


_PARAMETER_OF: Final = {"item_id": "item"}


class ScriptFile:
    """The tracker script shipped in the package, read once, with its ETag."""

    def __init__(self, name: str = SCRIPT) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loaded: tuple[bytes, str] | None = None

    def get(self) -> tuple[bytes, str] | None:
        """The script's bytes and ETag, or ``None`` when the package has no script."""
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    try:
                        body = resources.files("recsdk").joinpath(self._name).read_bytes()
                    except (FileNotFoundError, OSError):
                        return None
                    self._loaded = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        return self._loaded


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
