"""The project's one exception hierarchy: a subclass per kind of failure."""


class SpiderError(Exception):
    """Base of every error this project raises on purpose; the CLI prints these without a trace."""


class ConfigError(SpiderError):
    """A configuration file (phases, rules, training config) is missing, malformed or invalid."""


class DataError(SpiderError):
    """A data folder or file does not follow the SPIDER release layout or label map."""


class MissingFileError(DataError):
    """A file the layout requires is not there."""


class UnreadableFileError(DataError):
    """A file exists but cannot be read as what it should be."""


class GeometryMismatchError(DataError):
    """Two images that must share a voxel grid do not."""


class UnknownLabelError(DataError):
    """A mask holds values that are not in the SPIDER label map."""
