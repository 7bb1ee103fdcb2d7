"""Command groups of the `spider` console script that belong to evaluation (scoring, running)."""
