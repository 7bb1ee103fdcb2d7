"""`spider synth`: write synthetic SPIDER-like series in the release layout."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic SPIDER-like series (images/, masks/, overview.csv, gradings)",
        description=(
            "Generate sagittal lumbar-spine MR look-alikes with SPIDER masks in the release layout. "
            "The same arguments give byte-identical files. Refuses a non-empty folder it did not write."
        ),
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="output folder (new, empty or written by spider synth)"
    )
    parser.add_argument("--cases", type=int, default=6, metavar="N", help="number of series to write (default: 6)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    parser.add_argument(
        "--voxel-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply every spacing by F and divide the voxel count accordingly (default: 1; tests use 2.5)",
    )
    parser.add_argument(
        "--sequences",
        default="t1,t2,t2_SPACE",
        metavar="LIST",
        help="comma-separated sequences to draw from: t1, t2, t2_SPACE (default: all three)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final summary line")
    parser.set_defaults(handler=_synth)


def _synth(arguments: argparse.Namespace) -> int:
    from challenge.synth.release import describe_image, write_release

    sequences = [name.strip() for name in arguments.sequences.split(",") if name.strip()]
    paths = write_release(
        arguments.out,
        cases=arguments.cases,
        seed=arguments.seed,
        voxel_scale=arguments.voxel_scale,
        sequences=sequences,
        progress=not arguments.quiet,
    )
    if not arguments.quiet:
        for path in paths:
            print(describe_image(path))
    patients = {path.stem.split("_", 1)[0] for path in paths}
    print(f"wrote {len(paths)} synthetic series of {len(patients)} patients to {arguments.out} (seed {arguments.seed})")
    return 0
