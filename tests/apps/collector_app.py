"""A collector for gunicorn in the reliability tests: the store's URL comes from the env."""

import os

from recsdk import EventStore
from recsdk.collector import CollectorConfig, wsgi_app

app = wsgi_app(
    EventStore(os.environ["RECSDK_TEST_DATABASE_URL"]),
    config=CollectorConfig(write_keys=["wk_reliability"], rate_limit=None),
)
