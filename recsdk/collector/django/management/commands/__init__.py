"""``python manage.py recsdk``."""
