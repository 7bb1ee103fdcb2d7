"""Errors of ranking and building the leaderboard (part of the one hierarchy in challenge.errors)."""

from challenge.errors import SpiderError


class LeaderboardError(SpiderError):
    """The leaderboard cannot be built from what was found (no submissions, unknown columns...)."""


class BrowserTestError(LeaderboardError):
    """A browser needed to check the site could not be started."""
