"""Command groups of the `spider` console script that need only the challenge definitions."""
