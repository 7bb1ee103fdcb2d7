"""Errors of the container runner (part of the one hierarchy in challenge.errors)."""

from evaluation.errors import EvaluationError


class RunnerError(EvaluationError):
    """A job could not be run at all (as opposed to a job that ran and failed)."""


class EngineUnavailableError(RunnerError):
    """No Docker engine answers."""


class ImageNotFoundError(RunnerError):
    """The algorithm image is neither a local tag or id nor a readable `docker save` tarball."""


class BaseImageError(RunnerError):
    """The offline base image could not be built, loaded or tagged."""
