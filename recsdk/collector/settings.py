"""Reading the collector's ``RECSDK_*`` settings, shared by the Flask and Django front ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from recsdk.collector.core import CollectorConfig

__all__ = ["DEFAULT_DATABASE_URL", "FrontEndSettings", "read_settings"]

DEFAULT_DATABASE_URL = "sqlite:///recsdk.db"


@attrs.frozen
class FrontEndSettings:
    """What a framework front end needs: where the store is, where to serve, how."""

    database_url: str
    prefix: str
    config: CollectorConfig


def read_settings(get: Callable[[str, Any], Any]) -> FrontEndSettings:
    """Read ``RECSDK_*`` settings through ``get(name, default)``.

    ``RECSDK_DATABASE_URL`` (default ``sqlite:///recsdk.db``), ``RECSDK_PREFIX`` (Flask only;
    Django mounts the app where ``include()`` puts it), and one setting per
    :class:`~recsdk.collector.core.CollectorConfig` field, upper-cased:
    ``RECSDK_WRITE_KEYS``, ``RECSDK_PUBLIC_KEYS``, ``RECSDK_ALLOWED_ORIGINS``,
    ``RECSDK_RATE_LIMIT``, ``RECSDK_MAX_EVENTS``...
    """
    options = {
        field.name: get(f"RECSDK_{field.name.upper()}", field.default)
        for field in attrs.fields(CollectorConfig)
    }
    return FrontEndSettings(
        database_url=str(get("RECSDK_DATABASE_URL", DEFAULT_DATABASE_URL)),
        prefix=str(get("RECSDK_PREFIX", "/recsdk")),
        config=CollectorConfig(**options),
    )
