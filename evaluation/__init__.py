"""Scoring and running algorithm containers on hidden test series."""
