"""``python manage.py recsdk ...``: the ``recsdk`` command on the store of the settings.

    python manage.py recsdk erase-before --days 365
    python manage.py recsdk export-user --user-id u-42

The database is ``RECSDK_DATABASE_URL`` from the Django settings unless ``--url`` names one.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from recsdk import cli
from recsdk.collector.settings import read_settings


class Command(BaseCommand):
    help = "Export and erase shoppers' data in the recsdk event store (see docs/privacy.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("arguments", nargs=argparse.REMAINDER, help="export-user ...")

    def handle(self, *args: Any, **options: Any) -> None:
        url = read_settings(lambda name, default: getattr(settings, name, default)).database_url
        status = cli.main(options["arguments"], url=url, prog="manage.py recsdk")
        if status:
            raise CommandError("recsdk failed (see above)", returncode=status)
