"""The example shop's settings: the recsdk collector app and its RECSDK_* settings."""

import os
from pathlib import Path

# Settings for trying the example on this machine: a real site keeps its key secret.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["recsdk.collector.django"]
MIDDLEWARE = [
    "django.middleware.csrf.CsrfViewMiddleware",
    "shop.views.ValidationErrorsAs422",
]
ROOT_URLCONF = "shop.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).parent / "templates"],
    }
]

# recsdk keeps its events in its own tables: in the shop's database or, as here, in another.
RECSDK_DATABASE_URL = os.environ.get("RECSDK_DATABASE_URL", "sqlite:///recsdk-shop.db")
# The collector's list endpoints (GET /recsdk/recommendations...) serve the shop's recommender.
RECSDK_RECOMMENDER = "shop.views:recommender"
