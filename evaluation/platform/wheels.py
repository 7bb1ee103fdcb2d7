"""The evaluation image's third-party packages: what scoring imports, pinned to this environment (the
wheels themselves: evaluation.offline_image, shared with the reference container's build)."""

from __future__ import annotations

import re
from importlib import metadata
from typing import Iterable

from evaluation.offline_image import default_wheel_dir, pinned, prepare_wheels
from evaluation.platform.errors import EvaluationImageError

__all__ = ["DISTRIBUTIONS", "check_covered", "default_wheel_dir", "normalized", "prepare_wheels", "requirements"]

DISTRIBUTIONS = ("numpy", "SimpleITK", "scipy", "edt", "fastremap", "tqdm")
"""What scoring imports (evaluation.platform.image checks this against the modules it copies)."""


def normalized(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): 'SimpleITK' -> 'simpleitk'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(distributions: Iterable[str] = DISTRIBUTIONS) -> tuple[str, ...]:
    """`name==version` of each distribution, at the version installed here (what the tests ran with)."""
    return pinned(distributions, install_hint="install the project (pip install -e .)")


def check_covered(imported: Iterable[str], distributions: Iterable[str] = DISTRIBUTIONS) -> None:
    """EvaluationImageError naming every imported top-level module that no listed distribution provides."""
    provided = metadata.packages_distributions()
    wanted = {normalized(name) for name in distributions}
    missing = sorted(module for module in imported
                     if not {normalized(d) for d in provided.get(module, [module])} & wanted)
    if missing:
        raise EvaluationImageError(
            f"scoring imports {', '.join(missing)}, which the evaluation image does not install: expected every "
            f"third-party import among {list(distributions)}; add its distribution to "
            "evaluation.platform.wheels.DISTRIBUTIONS")
