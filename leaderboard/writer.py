"""Rendering the site's pages: the templates, each table's CSV and JSON beside its page, links between files.

Every page carries a Content-Security-Policy that allows only the site's own images and its own
inline style and script, pinned by hash: no server, no external request.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import jinja2
from markupsafe import Markup

from challenge import rules
from challenge.ranking import RankingConfig
from leaderboard.tables import Table, unique_names, write_table_files


@dataclass(frozen=True)
class Image:
    """A figure of a page: its file (relative to the page), alternative text and caption."""

    src: str
    alt: str
    caption: str


def date_text(moment: datetime) -> str:
    """A moment as shown on the site, in UTC: '2024-03-01 12:00 UTC'."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def link(path: Path, start: Path) -> str:
    """`path` relative to the folder `start`, as a URL path."""
    return Path(os.path.relpath(path, start)).as_posix()


def _static(name: str) -> str:
    return (resources.files("leaderboard") / "templates" / name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


SITE_NAV = (("index.html", "Leaderboard"), ("compare.html", "Compare & stability"),
            ("breakdowns.html", "Breakdowns"), ("rules.html", "Rules"))
"""The pages of the public site, as its header links them: (file from the root, title)."""


@dataclass(frozen=True)
class PageFrame:
    """What every page shows around its content (templates/base.html): the header's links (`nav`)
    and, in a private report, the banner that says whose it is (`audience`)."""

    site_title: str
    phase: str
    rules_version: str
    built_at: str
    style: Markup
    script: Markup
    style_hash: str
    script_hash: str
    method: str
    nav: tuple[tuple[str, str], ...] = SITE_NAV
    audience: str = ""

    @classmethod
    def of(cls, config: RankingConfig, *, title: str, now: datetime, nav: tuple[tuple[str, str], ...] = SITE_NAV,
           audience: str = "") -> PageFrame:
        style, script = _static("site.css"), _static("sort.js")
        return cls(
            site_title=title, phase=config.phase, rules_version=rules.RULES_VERSION, built_at=date_text(now),
            style=Markup(style), script=Markup(script), style_hash=_csp_hash(style), script_hash=_csp_hash(script),
            method=config.describe(), nav=nav, audience=audience,
        )

    def context(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("leaderboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )


class PageWriter:
    """Renders pages into the site's folder and keeps track of what it wrote."""

    def __init__(self, root: Path, frame: PageFrame):
        self.root = root
        self.frame = frame
        self.environment = _environment()
        self.pages: list[Path] = []

    def copy_static(self, name: str) -> None:
        """A file of templates/ copied as it is to the site's root (the favicon)."""
        (self.root / name).write_text(_static(name), encoding="utf-8")

    def page(self, relative: str, template: str, *, tables: Sequence[Table], **content: Any) -> Path:
        """Render `template` into `relative` (under the root), each of `tables` as CSV and JSON beside it."""
        unique_names(tables)
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = Path(relative).stem
        files = {table.name: write_table_files(table, path.parent, page_stem=stem) for table in tables}
        html = self.environment.get_template(template).render(
            **self.frame.context(), **content, files=files, root="../" * relative.count("/")
        )
        path.write_text(html, encoding="utf-8")
        self.pages.append(path)
        return path
