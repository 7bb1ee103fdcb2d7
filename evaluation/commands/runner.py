"""`spider try` (run an algorithm image locally as the organizer will) and `spider images base`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from challenge.phases import DEFAULT_PHASE


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "try",
        help="run an algorithm image on a SPIDER-layout folder exactly as the organizer will, and score it",
        description=(
            "Run IMAGE (a tag, an id or a `docker save` tarball) once per series of DIR with the phase's "
            "limits and the organizer's container flags (no network, read-only root, non-root user, ...), "
            "check and score the outputs. Writes OUT/predictions/, OUT/jobs/<case>/log.txt, OUT/jobs.json, "
            "OUT/metrics.json and OUT/cases.csv. Exit code 0 when every case succeeded, 1 otherwise."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="image tag or id, or a `docker save` tarball")
    parser.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="SPIDER-layout folder (images/, masks/)"
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="OUT", help="folder for predictions, logs and scores"
    )
    parser.add_argument(
        "--phase", default=DEFAULT_PHASE, metavar="NAME", help=f"phase whose limits apply (default: {DEFAULT_PHASE})"
    )
    parser.add_argument("--time-limit", type=int, metavar="SECONDS", help="override the phase's time limit per case")
    parser.add_argument("--memory", metavar="SIZE", help="override the phase's memory limit, e.g. 4g")
    parser.set_defaults(handler=_try)

    images = subparsers.add_parser("images", help="offline container images", description="Offline container images.")
    kinds = images.add_subparsers(dest="images_command", metavar="KIND", required=True)
    base = kinds.add_parser(
        "base",
        help="build the offline Python 3.11 base image (also tagged python:3.11-slim when that tag is absent)",
        description=(
            "Build a Debian bookworm Python 3.11 image from Debian packages (debootstrap, needs root and a "
            "Debian mirror, not a container registry), reproducibly, and tag it spider/python-base:3.11-bookworm "
            "and python:3.11-slim when no image has that tag. The root file system is cached, so a rebuild "
            "takes seconds."
        ),
    )
    base.add_argument("--cache-dir", type=Path, metavar="DIR", help="where the root file system tar is kept "
                      "(default: $SPIDER_CACHE_DIR/base-image or ~/.cache/spider/base-image)")
    base.add_argument("--mirror", default=None, metavar="URL", help="Debian mirror (default: deb.debian.org)")
    base.add_argument("--refresh", action="store_true", help="run debootstrap again even when a cached root exists")
    base.set_defaults(handler=_images_base)


def _try(arguments: argparse.Namespace) -> int:
    from challenge.phases import get_phase
    from evaluation.runner.docker_runner import connect
    from evaluation.runner.tryout import format_report, try_image

    phase = get_phase(arguments.phase).with_overrides(time_limit_seconds=arguments.time_limit, memory=arguments.memory)
    client = connect()
    result = try_image(
        client,
        arguments.image,
        data_dir=arguments.data,
        out_dir=arguments.out,
        phase=phase,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(format_report(result))
    return 0 if result.all_succeeded else 1


def _images_base(arguments: argparse.Namespace) -> int:
    from evaluation.runner.base_image import DEFAULT_MIRROR, build_base_image
    from evaluation.runner.docker_runner import connect

    client = connect()
    result = build_base_image(
        client,
        cache_dir=arguments.cache_dir,
        mirror=arguments.mirror or DEFAULT_MIRROR,
        refresh=arguments.refresh,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(f"image {result.image_id} ({result.seconds:.0f} s)")
    for tag in result.tags_made:
        print(f"tagged {tag}")
    for tag in result.tags_kept:
        print(f"kept {tag}: an image that this command did not build already has this tag")
    return 0
