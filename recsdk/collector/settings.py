"""Reading the collector's ``RECSDK_*`` settings, shared by the Flask and Django front ends."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import attrs

from recsdk.collector.core import CollectorConfig
from recsdk.collector.reads import ListSource
from recsdk.errors import ValidationError
from recsdk.store import EventStore

__all__ = ["DEFAULT_DATABASE_URL", "FrontEndSettings", "make_recommender", "read_settings"]

RELOAD_EVERY = 60.0
"""Seconds between checks for a newer saved model, for a recommender made from a setting."""

DEFAULT_DATABASE_URL = "sqlite:///recsdk.db"


@attrs.frozen
class FrontEndSettings:
    """What a framework front end needs: where the store is, where to serve, how."""

    database_url: str
    prefix: str
    config: CollectorConfig
    recommender: Any = None


def read_settings(get: Callable[[str, Any], Any]) -> FrontEndSettings:
    """Read ``RECSDK_*`` settings through ``get(name, default)``.

    ``RECSDK_DATABASE_URL`` (default ``sqlite:///recsdk.db``), ``RECSDK_PREFIX`` (Flask only;
    Django mounts the app where ``include()`` puts it), and one setting per
    :class:`~recsdk.collector.core.CollectorConfig` field, upper-cased:
    ``RECSDK_WRITE_KEYS``, ``RECSDK_PUBLIC_KEYS``, ``RECSDK_ALLOWED_ORIGINS``,
    ``RECSDK_RATE_LIMIT``, ``RECSDK_MAX_EVENTS``... ``RECSDK_RECOMMENDER`` enables the
    list endpoints (see :func:`make_recommender`).
    """
    options = {
        field.name: get(f"RECSDK_{field.name.upper()}", field.default)
        for field in attrs.fields(CollectorConfig)
    }
    try:
        config = CollectorConfig(**options)
    except ValidationError as error:  # name the setting the app wrote, not the field
        setting = f"RECSDK_{error.field.upper()}"
        raise ValidationError(setting, error.reason) from None
    return FrontEndSettings(
        database_url=str(get("RECSDK_DATABASE_URL", DEFAULT_DATABASE_URL)),
        prefix=str(get("RECSDK_PREFIX", "/recsdk")),
        config=config,
        recommender=get("RECSDK_RECOMMENDER", None),
    )


def make_recommender(setting: Any, store: EventStore) -> ListSource | None:
    """The recommender a ``RECSDK_RECOMMENDER`` setting names.

    - ``None`` / ``False``: none (the list endpoints answer 404);
    - ``True``: a :class:`~recsdk.Recommender` on the collector's store that serves the
      state saved beside a SQLite database, and checks for a newer one every minute;
    - ``"package.module:name"`` (or ``"package.module.name"``): that object, or what it
      returns when it is a function (a factory);
    - a recommender object: itself.
    """
    if setting is None or setting is False:
        return None
    if setting is True:
        from recsdk.recommender import Recommender  # numba and the engine load only now

        recommender = Recommender(store, reload_every=RELOAD_EVERY)
        if recommender.model_path is None:  # it would answer 503 for ever
            recommender.close()
            raise ValidationError(
                "RECSDK_RECOMMENDER",
                "True serves the state saved beside a SQLite file; with another database, "
                "name your own Recommender(..., model_path=...) here",
            )
        return recommender
    if isinstance(setting, str):
        module, _, name = setting.rpartition(":") if ":" in setting else setting.rpartition(".")
        found = getattr(importlib.import_module(module), name)
        setting = found() if callable(found) and not hasattr(found, "recommend") else found
    if not hasattr(setting, "recommend") or not hasattr(setting, "similar_items"):
        raise TypeError(f"RECSDK_RECOMMENDER: {setting!r} is not a recsdk Recommender")
    return setting  # type: ignore[no-any-return]
