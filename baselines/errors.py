"""Errors of the baseline (part of the one hierarchy in challenge.errors)."""

from challenge.errors import ConfigError, SpiderError


class BaselineError(SpiderError):
    """Training, inference, export or the container build could not be carried out."""


class BaselineConfigError(ConfigError):
    """A training configuration file or value is invalid."""


class RunError(BaselineError):
    """A run folder is missing files, or holds a run that does not fit the request."""


class ExportError(BaselineError):
    """The model could not be exported, or the export does not reproduce the model."""


class ContainerBuildError(BaselineError):
    """Preparing the build context or building the reference container failed."""


class InputContractError(BaselineError):
    """The container's input does not follow the algorithm contract in challenge.contract."""
