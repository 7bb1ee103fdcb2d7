"""The whole path with a real container and the `spider` commands: phase set, submit (a `docker
save` tarball, pinned by digest), evaluate with the production runner, status, rescore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from challenge.rules import RULES_VERSION
from submissions.db import open_registry
from submissions.queries import phase_results

SPIDER = Path(sys.executable).with_name("spider")


def spider(*arguments: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(SPIDER), *arguments], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_real_container_end_to_end_through_the_cli(
    docker_client, identity_image, hidden_set, db_url, work_dir, tmp_path
):
    env = dict(os.environ, SPIDER_DB=db_url, SPIDER_WORK=str(work_dir))
    done = spider("phase", "set", "sanity-check", "--data", str(hidden_set), "--time-limit", "120", "--memory", "512m",
                  "--max-submissions", "3", "--per", "day", env=env)
    assert done.returncode == 0, done.stderr
    assert "phase sanity-check registered: 6 cases" in done.stdout
    assert "3 submission(s) per team per day" in done.stdout

    image = docker_client.images.get(identity_image)
    tarball = tmp_path / "identity.tar"
    with tarball.open("wb") as stream:
        for chunk in image.save(named=True):
            stream.write(chunk)
    team = "Team <b>\"Ü\"</b>; $(id)"
    done = spider(
        "submit", "--team", team, "--name", "identity v1", "--image", str(tarball), "--phase", "sanity-check", env=env
    )
    assert done.returncode == 0, done.stderr
    submission_id = int(done.stdout.strip())
    # The same image again, as a tarball or by tag: refused for this team and phase.
    for reference in (str(tarball), identity_image):
        again = spider(
            "submit", "--team", team, "--name", "again", "--image", reference, "--phase", "sanity-check", env=env
        )
        assert again.returncode == 2 and "already submitted image" in again.stderr

    # A node that lacks the image loads it from the archive in the work folder.
    docker_client.images.remove(image.id, force=True)
    done = spider("evaluate", "--submission", str(submission_id), "--workers", "2", env=env)
    assert done.returncode == 0, done.stderr
    assert "6 jobs run, 6 cases scored, 1 submissions completed" in done.stdout
    # The archive holds the image without its tags: the engine has it back by id only. Tag it again for the
    # session's other tests.
    reloaded = docker_client.images.get(image.id)
    assert identity_image not in reloaded.tags
    reloaded.tag(identity_image)

    status = spider("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    [summary] = json.loads(status.stdout)
    assert (summary["id"], summary["team"], summary["name"], summary["status"]) == (
        submission_id, team, "identity v1", "completed"
    )
    assert summary["digest"] == image.id and summary["job_counts"] == {"succeeded": 6}
    assert repr(team) in spider("status", env=env).stdout

    registry = open_registry(db_url, work=work_dir)
    try:
        [result] = phase_results(registry, "sanity-check")
    finally:
        registry.dispose()
    assert result.image_digest == image.id
    assert all(job.status == "succeeded" and Path(job.log_path).read_text().startswith("copied") for job in result.jobs)
    dice = [r.value for r in result.rows if r.metric == "dice" and r.level == "all"]
    assert dice and all(value == 1.0 for value in dice)  # the identity algorithm is perfect here
    metrics = json.loads((work_dir / "submissions" / str(submission_id) / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["counts"] == {"scored": 6, "missing": 0, "invalid": 0}

    done = spider("rescore", "--all", env=env)
    assert done.returncode == 0, done.stderr
    assert f"6 cases rescored under rules {RULES_VERSION}; 1 submissions updated" in done.stdout
