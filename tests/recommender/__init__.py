"""Tests of the Recommender facade (recsdk.recommender)."""
