"""The collector as a reusable Django app.

Add ``"recsdk.collector.django"`` to ``INSTALLED_APPS`` and
``path("recsdk/", include("recsdk.collector.django.urls"))`` to the URLconf; settings are
``RECSDK_DATABASE_URL``, ``RECSDK_WRITE_KEYS``, ``RECSDK_PUBLIC_KEYS``,
``RECSDK_ALLOWED_ORIGINS``... (see :func:`recsdk.collector.settings.read_settings`). The view
is a plain synchronous view: it works under WSGI and, run in a thread by Django, under ASGI.
Install Django with ``pip install "recsdk[django]"``.
"""
