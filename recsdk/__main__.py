"""``python -m recsdk``: the ``recsdk`` command (see :mod:`recsdk.cli`)."""

import sys

from recsdk.cli import main

sys.exit(main())
