"""Errors of evaluating as grand-challenge.org does (part of the one hierarchy in challenge.errors)."""

from evaluation.errors import EvaluationError


class PlatformError(EvaluationError):
    """An evaluation in the platform's way could not be carried out."""


class PredictionsFileError(PlatformError):
    """/input/predictions.json is missing, malformed, or names a job the evaluation cannot place."""


class JobOutputError(PlatformError):
    """A job's output image is missing, or not on its case's ground-truth grid."""


class GroundTruthError(PlatformError):
    """No usable ground truth: neither the phase's nor one baked into the image, or both, or a case lacks one."""


class EvaluationImageError(PlatformError):
    """The evaluation image could not be built."""


class LocalEvaluationError(PlatformError):
    """A local run of the evaluation image failed; `last_stderr_line` is what the platform would show."""

    def __init__(self, message: str, *, exit_code: int | None = None, last_stderr_line: str = ""):
        super().__init__(message)
        self.exit_code = exit_code
        self.last_stderr_line = last_stderr_line
