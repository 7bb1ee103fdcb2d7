"""Errors of the synthetic data generator (part of the one hierarchy in challenge.errors)."""

from challenge.errors import SpiderError


class SynthError(SpiderError):
    """The generator was asked for something it cannot make (a bad argument)."""


class OutputFolderError(SynthError):
    """The output folder holds files the generator did not write: it refuses to touch them."""
