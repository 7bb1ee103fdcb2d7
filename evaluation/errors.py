"""Errors of scoring and running algorithm containers (part of the one hierarchy in challenge.errors)."""

from challenge.errors import SpiderError


class EvaluationError(SpiderError):
    """Scoring or running could not be carried out."""


class InvalidPredictionError(EvaluationError):
    """A prediction file breaks the output contract; `reason` is what gets recorded for the case."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
