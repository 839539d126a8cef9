"""The example shop's Django project (see ``manage.py`` for how to run it)."""
