"""The Django app's configuration."""

from __future__ import annotations

from django.apps import AppConfig


class RecsdkCollectorConfig(AppConfig):
    name = "recsdk.collector.django"
    label = "recsdk_collector"
    verbose_name = "recsdk collector"
