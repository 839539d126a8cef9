"""Management commands of the recsdk Django app."""
