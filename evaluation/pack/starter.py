"""`spider pack`: write the participants' starter pack for a phase, rendered from templates/."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import jinja2

from challenge import contract, labels
from challenge.phases import Phase, format_size
from evaluation.errors import EvaluationError
from evaluation.runner.invoke import API_METHOD_LABEL, HEALTH_LIMIT_SECONDS, INVOKE, PORT, SERVER_ENVIRONMENT

TEMPLATES = Path(__file__).parent / "templates"
STYLES = ("exec", "invoke")
"""The two ways grand-challenge runs an algorithm image; one folder of the pack each."""
_SHARED = (  # (file in each style's folder, template, executable)
    ("algorithm.py", "common/algorithm.py.j2", False),
    ("mha.py", "common/mha.py.j2", False),
    ("build.sh", "common/build.sh.j2", True),
    ("test.sh", "common/test.sh.j2", True),
    ("save.sh", "common/save.sh.j2", True),
    (".dockerignore", "common/dockerignore.j2", False),
)
_OWN = {
    "exec": (("Dockerfile", "exec/Dockerfile.j2", False), ("run.py", "exec/run.py.j2", False)),
    "invoke": (("Dockerfile", "invoke/Dockerfile.j2", False), ("server.py", "invoke/server.py.j2", False)),
}
(PORT_VARIABLE,) = SERVER_ENVIRONMENT


class PackError(EvaluationError):
    """The starter pack could not be written (the output folder is not new or empty)."""


@dataclass(frozen=True)
class PackFile:
    path: str
    """Relative to the pack's folder, with '/' (e.g. "exec/Dockerfile")."""
    text: str
    executable: bool


@dataclass(frozen=True)
class StarterPack:
    out_dir: Path
    phase: Phase
    files: tuple[PackFile, ...]


def default_tag(phase: Phase, style: str) -> str:
    """The image tag the pack's scripts use by default, e.g. spider-starter-final-exec:latest."""
    return f"{archive_name(phase, style)}:latest"


def archive_name(phase: Phase, style: str) -> str:
    return f"spider-starter-{phase.name}-{style}"


def _size(n_bytes: int) -> str:
    """'16g' for a whole number of MiB or more (phases.toml's notation), else decimal: '10 GB'."""
    if n_bytes % 1024**2 == 0:
        return format_size(n_bytes)
    return f"{n_bytes / 1000**3:g} GB" if n_bytes >= 1000**3 else f"{n_bytes / 1000**2:g} MB"


def template_values(phase: Phase) -> dict:
    """Everything the templates name: the phase's limits, the contract and the label values."""
    return {
        "phase_name": phase.name,
        "phase_description": phase.description,
        "phase_summary": phase.describe(),
        "time_limit_s": phase.time_limit_seconds,
        "memory": _size(phase.memory_bytes),
        "cpus": f"{phase.cpus:g}",
        "gpus": phase.gpus,
        "pids_limit": phase.pids_limit,
        "tmp_size": _size(phase.tmp_bytes),
        "output_limit": _size(phase.output_limit_bytes),
        "image_limit": _size(phase.image_limit_bytes),
        "max_image_layers": phase.max_image_layers,
        "contract": contract.describe(),
        "inputs_json": str(contract.INPUTS_JSON),
        "input_root": str(contract.INPUT_ROOT),
        "output_root": str(contract.OUTPUT_ROOT),
        "input_slug": contract.INPUT_SOCKET.slug,
        "input_relative_path": contract.INPUT_SOCKET.relative_path,
        "input_folder": str(contract.INPUT_FOLDER),
        "output_relative_path": contract.OUTPUT_SOCKET.relative_path,
        "output_folder": str(contract.OUTPUT_FOLDER),
        "background": labels.BACKGROUND,
        "spinal_canal": labels.SPINAL_CANAL,
        "vertebra_l5": labels.vertebra_value(1),
        "vertebra_first": labels.vertebra_value(1),
        "vertebra_last": labels.vertebra_value(labels.MAX_LEVEL),
        "vertebra_first_name": labels.vertebra_name(1),
        "vertebra_second_name": labels.vertebra_name(2),
        "partial_vertebra_l5": labels.PARTIAL_VERTEBRA_OFFSET + 1,
        "partial_first": labels.PARTIAL_VERTEBRA_OFFSET + 1,
        "partial_last": labels.PARTIAL_VERTEBRA_OFFSET + labels.MAX_LEVEL,
        "disc_l5_s1": labels.disc_value(1),
        "disc_first": labels.disc_value(1),
        "disc_last": labels.disc_value(labels.MAX_LEVEL),
        "disc_first_name": labels.disc_name(1),
        "api_label": API_METHOD_LABEL,
        "invoke": INVOKE,
        "port": PORT,
        "port_variable": PORT_VARIABLE,
        "health_limit_s": f"{HEALTH_LIMIT_SECONDS:g}",
        "exec_tag": default_tag(phase, "exec"),
        "invoke_tag": default_tag(phase, "invoke"),
        "exec_archive": archive_name(phase, "exec"),
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # shell, Python, Dockerfiles and Markdown: nothing is HTML
    )


def render_pack(phase: Phase) -> tuple[PackFile, ...]:
    """The pack's files, rendered for `phase` (nothing written)."""
    environment = _environment()
    values = template_values(phase)

    def render(template: str, **extra) -> str:
        return environment.get_template(template).render(**values, **extra)

    files = [PackFile("README.md", render("README.md.j2"), False)]
    for style in STYLES:
        extra = {"style": style, "tag": default_tag(phase, style), "archive": archive_name(phase, style)}
        for name, template, executable in (*_OWN[style], *_SHARED):
            files.append(PackFile(f"{style}/{name}", render(template, **extra), executable))
    return tuple(files)


def write_starter_pack(*, phase: Phase, out_dir: Path) -> StarterPack:
    """Render the pack for `phase` and write it into `out_dir`, a new or empty folder."""
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    files = render_pack(phase)  # rendered first: a template error leaves no half-written folder
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in files:
        path = out_dir / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item.text, encoding="utf-8")
        if item.executable:
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return StarterPack(out_dir=out_dir, phase=phase, files=files)


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.is_symlink():
        raise PackError(f"--out {out_dir}: expected a new or empty folder, found a symbolic link")
    if out_dir.exists() and not out_dir.is_dir():
        raise PackError(f"--out {out_dir}: expected a new or empty folder, found a file")
    if out_dir.is_dir():
        found = sorted(entry.name for entry in out_dir.iterdir())
        if found:
            shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
            raise PackError(
                f"--out {out_dir}: expected a new or empty folder, found {len(found)} "
                f"{'entry' if len(found) == 1 else 'entries'} in it ({shown}); give another folder"
            )
