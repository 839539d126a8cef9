"""URLs to ``include()``: ``events`` (POST a batch), ``recommendations``, ``similar/<item>``,
``recsdk.js``."""

from __future__ import annotations

from django.urls import path

from recsdk.collector.django.views import collector_view

app_name = "recsdk"
urlpatterns = [path("<path:endpoint>", collector_view, name="collector")]
