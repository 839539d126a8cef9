#!/usr/bin/env python
"""recsdk in a Django project: the collector app, the browser tracker and recommendations.

Run it with Django installed (``pip install "recsdk[django]"``)::

    python examples/django_shop/manage.py runserver

then open http://127.0.0.1:8000/products/sku-1. The page loads the tracker from the
collector (``/recsdk/recsdk.js``, the ``recsdk.collector.django`` app's URLs), which records
the product view; the page lists similar items. ``POST /checkout`` (form fields
``user_id``, ``item_id``, ``order_id``) records a purchase from the server.
``RECSDK_DATABASE_URL`` picks the database (default: ``recsdk-shop.db`` in the working
directory); ``POST /admin/fit`` fits the model on what was tracked so far (a real shop would
fit on a schedule). ``GET`` and ``DELETE /users/<user_id>/data`` export and erase a
shopper's data, as does ``python examples/django_shop/manage.py recsdk export-user
--user-id u1`` (docs/privacy.md). The shop's own POST and DELETE routes need Django's CSRF
token, as every form of a Django site does; the collector's events endpoint is exempt.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
