"""Synthetic SPIDER-like data: lumbar spine MR series with masks, in the SPIDER release layout.

`make_series` draws one series of one patient; `write_release` writes a whole folder
(images/, masks/, overview.csv, radiological_gradings.csv, SYNTHETIC.txt). Both are
deterministic for a seed.
"""

from challenge.synth.anatomy import DiscGrading, PatientAnatomy, make_anatomy
from challenge.synth.contrast import SEQUENCES
from challenge.synth.errors import OutputFolderError, SynthError
from challenge.synth.release import write_release
from challenge.synth.series import SyntheticSeries, make_series

__all__ = [
    "SEQUENCES",
    "DiscGrading",
    "OutputFolderError",
    "PatientAnatomy",
    "SynthError",
    "SyntheticSeries",
    "make_anatomy",
    "make_series",
    "write_release",
]
