"""The main job end to end on synthetic data: what `make demo` runs.

Every step is a `spider` command, printed before it runs, so the demo doubles as a
walk-through: synthesize data, train the smoke baseline, build its container and three
deliberately flawed variants, register them as teams, evaluate, and build the leaderboard.
"""

from __future__ import annotations

import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from challenge.cli import main as spider
from challenge.errors import SpiderError

DEMO_PHASE = "final"
REFERENCE_TAG = "spider-demo/reference:latest"
FLAW_SCRIPT = Path(__file__).with_name("flaw.py")


@dataclass(frozen=True)
class Entry:
    team: str
    algorithm: str
    tag: str
    flaw: str | None  # None: the reference itself


ENTRIES = (
    Entry("SPIDER organizers", "UNETR baseline (smoke)", REFERENCE_TAG, None),
    Entry("Team Discless", "baseline without discs", "spider-demo/drop-discs:latest", "drop-discs"),
    Entry("Team Off-by-one", "baseline, levels named one too high", "spider-demo/shift-levels:latest", "shift-levels"),
    Entry("Team Fragile", "baseline that crashes on SPACE series", "spider-demo/crash-space:latest", "crash-space"),
)


class DemoError(SpiderError):
    """A step of the demo failed; the message names the command."""


def _step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}\n$ spider {shlex.join(argv)}", flush=True)
    started = time.perf_counter()
    code = spider(argv)
    if code != 0:
        raise DemoError(f"step '{title}' failed with exit code {code}: spider {shlex.join(argv)}")
    print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)


def build_flawed_image(reference_tag: str, *, flaw: str, tag: str, context: Path) -> None:
    """An image FROM the reference whose entrypoint runs the reference and then spoils its output."""
    import docker

    client = docker.from_env()
    config = client.images.get(reference_tag).attrs["Config"]
    command = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    context.mkdir(parents=True, exist_ok=True)
    (context / "flaw.py").write_bytes(FLAW_SCRIPT.read_bytes())
    entrypoint = ["python3", "/opt/spider-demo/flaw.py", *command]
    (context / "Dockerfile").write_text(
        f"FROM {reference_tag}\n"
        "COPY flaw.py /opt/spider-demo/flaw.py\n"
        f"ENV SPIDER_DEMO_FLAW={flaw}\n"
        f"ENTRYPOINT {_json_list(entrypoint)}\n"
        "CMD []\n",
        encoding="utf-8",
    )
    client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, network_mode="none")
    print(f"   built {tag} (flaw: {flaw})", flush=True)


def _json_list(items: list[str]) -> str:
    import json

    return json.dumps(items)


def run_demo(out: Path, *, test_cases: int = 6, train_cases: int = 8, workers: int = 2) -> Path:
    """Run the whole path into `out`; returns the leaderboard's index.html."""
    out = Path(out).resolve()
    marker = out / ".spider-demo"
    if out.exists() and any(out.iterdir()) and not marker.exists():
        raise DemoError(f"{out} is not empty and not a demo folder: choose an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text("written by `spider demo`\n", encoding="utf-8")
    train, test_set, run = out / "train", out / "hidden-test-set", out / "baseline-run"
    work, site = out / "registry", out / "site"
    if work.exists():
        # A rerun starts a fresh registry: the same images would be refused as duplicates.
        shutil.rmtree(work)
    started = time.perf_counter()

    _step("synthesize training data", ["synth", "--out", str(train), "--cases", str(train_cases), "--seed", "1",
                                       "--voxel-scale", "2", "--quiet"])
    # seed 2022 draws a SPACE series
    _step("synthesize the hidden test set", ["synth", "--out", str(test_set), "--cases", str(test_cases),
                                             "--seed", "2022", "--voxel-scale", "2", "--quiet"])
    _step("check the hidden test set", ["data", "check", str(test_set)])
    _step("build the offline Python base image (reused when present)", ["images", "base"])
    _step("train the smoke baseline (UNETR, CPU)", ["baseline", "train", "--data", str(train), "--out", str(run),
                                                    "--smoke"])
    _step("build the reference algorithm container", ["baseline", "container", "--run", str(run),
                                                      "--tag", REFERENCE_TAG])
    print("\n== build three deliberately flawed variants of the reference", flush=True)
    for entry in ENTRIES:
        if entry.flaw:
            build_flawed_image(REFERENCE_TAG, flaw=entry.flaw, tag=entry.tag, context=out / "flawed" / entry.flaw)

    registry = ["--work", str(work)]
    _step("register the phase with its hidden test set",
          ["phase", "set", DEMO_PHASE, "--data", str(test_set), "--cpus", "1", "--time-limit", "300", *registry])
    for entry in ENTRIES:
        _step(f"submit for {entry.team}", ["submit", "--team", entry.team, "--name", entry.algorithm,
                                           "--image", entry.tag, "--phase", DEMO_PHASE, *registry])
    _step("evaluate every pending submission", ["evaluate", "--pending", "--workers", str(workers), *registry])
    _step("show the registry", ["status", *registry])
    _step("build the leaderboard site", ["leaderboard", "build", "--phase", DEMO_PHASE, "--out", str(site),
                                         *registry])
    team_report = out / "team-report"
    _step(f"write the private report of team {ENTRIES[0].team}",
          ["report", "team", "--team", ENTRIES[0].team, "--phase", DEMO_PHASE, "--out", str(team_report), *registry])
    index = site / "index.html"
    print(
        f"\nDemo finished in {time.perf_counter() - started:.0f} s.\n"
        f"Leaderboard (public site): {index}\n"
        f"Open it with a browser (file://{index}), or serve it: python3 -m http.server -d {site} 8000\n"
        f"Private report of team {ENTRIES[0].team}: {team_report / 'index.html'}"
    )
    return index
