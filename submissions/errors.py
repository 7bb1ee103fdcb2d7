"""Errors of the submission registry and engine (part of the one hierarchy in challenge.errors)."""

from challenge.errors import SpiderError


class RegistryError(SpiderError):
    """The registry database cannot be opened, migrated or used."""


class IntakeError(SpiderError):
    """A phase or a submission is refused; the message says which rule and what to do."""


class DuplicateSubmissionError(IntakeError):
    """The team already submitted this image digest to this phase."""


class SubmissionLimitError(IntakeError):
    """The team reached the phase's submission limit for the current period."""


class UnknownRecordError(SpiderError):
    """A phase, submission or team named on the command line is not in the registry."""


class EngineError(SpiderError):
    """The evaluation engine cannot go on (e.g. an executor cannot start)."""
