"""Ranking and the static leaderboard site."""
