"""Throughput of the evaluation engine: one do-nothing-but-valid submission on synthetic cases.

    .venv/bin/python benchmarks/bench_throughput.py [--cases 100] [--workers 2] [--executors local,ray]
                                                    [--voxel-scale 1.0] [--out DIR] [--json]

For each executor the benchmark makes a fresh registry (SQLite) in OUT, registers phase
`sanity-check` on the same synthetic hidden test set (challenge.synth, seed 0) with 1 CPU and
1 GiB per job, submits the `zeros` algorithm (benchmarks/containers/zeros: reads the input's
header, writes an all-background segmentation on its grid) and runs `evaluate` to the end with
the production runner and scorer. Ray runs as a local Ray started by the engine on this machine.

Reported per executor:
- cases per minute: cases / wall-clock seconds of `evaluate` x 60;
- overhead share: 1 - (sum of container seconds) / (wall seconds x workers), the share of the
  worker slots not spent inside the algorithm's container (container create, input copy,
  output checks, container removal, scoring, database writes, dispatch, idle slots);
- per-job means from the registry's timestamps: container seconds (the runner's start-to-exit),
  run task seconds (claim to stored outcome), scoring seconds (stored outcome to stored rows).
Needs a Docker engine (`make engine`) and, for Ray, the `cluster` extra.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ZEROS = HERE / "containers" / "zeros"
ZEROS_TAG = "spider-bench/zeros:latest"


def build_zeros_image() -> str:
    import docker.errors

    from evaluation.runner import base_image as base
    from evaluation.runner.docker_runner import connect

    client = connect()
    try:
        client.images.get(base.SLIM_TAG)
    except docker.errors.ImageNotFound:
        try:
            image_id = client.images.get(base.BASE_TAG).id
        except docker.errors.ImageNotFound:
            image_id = base.build_base_image(client, progress=print).image_id
        base.tag_image(client, image_id, base.SLIM_TAG, keep_foreign=True)
    image, _ = client.images.build(path=str(ZEROS), tag=ZEROS_TAG, rm=True, forcerm=True, network_mode="none")
    return image.id


def run_one(executor_kind: str, *, data: Path, out: Path, workers: int) -> dict:
    from submissions.db import open_registry
    from submissions.engine import evaluate
    from submissions.executors import make_executor
    from submissions.intake import set_phase, submit
    from submissions.models import Job

    work = out / executor_kind
    registry = open_registry(f"sqlite:///{work / 'registry.sqlite'}", work=work)
    try:
        set_phase(
            registry, "sanity-check", data_dir=data, time_limit_seconds=120, memory="1g", cpus=1.0, max_submissions=100
        )
        receipt = submit(registry, team="benchmark", name="zeros", image=ZEROS_TAG, phase="sanity-check")
        setup_began = time.monotonic()
        executor = make_executor(executor_kind, workers=workers)
        executor_start_s = time.monotonic() - setup_began
        began = time.monotonic()
        try:
            report = evaluate(registry, executor, submission_ids=[receipt.id])
        finally:
            executor.close()
        wall_s = time.monotonic() - began
        with registry.session() as session:
            jobs = session.query(Job).filter(Job.submission_id == receipt.id).all()
            container_s = [job.seconds for job in jobs]
            run_task_s = [(job.finished_at - job.started_at).total_seconds() for job in jobs]
            scoring_s = [(job.scored_at - job.finished_at).total_seconds() for job in jobs]
            statuses = sorted({job.status for job in jobs})
    finally:
        registry.dispose()
    cases = len(jobs)
    return {
        "executor": executor_kind,
        "workers": workers,
        "cases": cases,
        "job_statuses": statuses,
        "completed": report.completed == [receipt.id],
        "executor_start_s": round(executor_start_s, 2),
        "wall_s": round(wall_s, 2),
        "cases_per_minute": round(cases / wall_s * 60, 1),
        "overhead_share": round(1 - sum(container_s) / (wall_s * workers), 3),
        "mean_container_s": round(statistics.mean(container_s), 3),
        "mean_run_task_s": round(statistics.mean(run_task_s), 3),
        "mean_scoring_s": round(statistics.mean(scoring_s), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executors", default="local,ray")
    parser.add_argument(
        "--voxel-scale", type=float, default=1.0, help="challenge.synth voxel scale (1.0: SPIDER-like grids)"
    )
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary folder, removed after)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    arguments = parser.parse_args(argv)

    from challenge.synth.release import write_release

    with tempfile.TemporaryDirectory(prefix="spider-bench-") as scratch:
        out = arguments.out or Path(scratch)
        data = out / "data"
        began = time.monotonic()
        if not (data / "images").is_dir():
            write_release(data, cases=arguments.cases, seed=0, voxel_scale=arguments.voxel_scale)
        print(f"synthetic data: {arguments.cases} cases in {time.monotonic() - began:.1f} s", file=sys.stderr)
        build_zeros_image()
        results = [
            run_one(kind, data=data, out=out, workers=arguments.workers) for kind in arguments.executors.split(",")
        ]
    if arguments.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        for r in results:
            print(
                f"{r['executor']:>5}: {r['cases']} cases, {r['workers']} workers: {r['cases_per_minute']} cases/min "
                f"({r['wall_s']} s), overhead share {r['overhead_share']:.1%}; "
                f"per job: container {r['mean_container_s']} s, "
                f"run task {r['mean_run_task_s']} s, scoring {r['mean_scoring_s']} s; "
                f"executor start {r['executor_start_s']} s; "
                f"statuses {r['job_statuses']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
