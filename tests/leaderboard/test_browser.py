"""A real browser on the built site: Debian's headless Chromium driven by Playwright over localhost.

Needs /usr/bin/chromium (Debian package `chromium`) and the `playwright` Python package; it never
downloads a browser. Where either is missing the test is skipped, except in CI (CI=true), where
it fails so that a missing set-up step cannot pass unnoticed. The screenshot is kept under
work/test-artifacts/leaderboard/ (or $SPIDER_TEST_ARTIFACTS).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from .conftest import EVIL_TEAM

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REPOSITORY = Path(__file__).resolve().parents[2]


def _artifacts() -> Path:
    folder = Path(os.environ.get("SPIDER_TEST_ARTIFACTS") or REPOSITORY / "work" / "test-artifacts") / "leaderboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} not found: install Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            context.close()


@pytest.fixture(scope="module")
def served_site(built_site):
    """The built site on an HTTP server bound to 127.0.0.1 (a free port), for this module only."""
    handler = functools.partial(_QuietHandler, directory=str(built_site.out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def _watch(page):
    """Lists that fill with requested URLs, console errors and dialogs (an alert would be one)."""
    seen = {"requests": [], "errors": [], "dialogs": [], "failed": []}
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("response", lambda response: response.status >= 400 and seen["failed"].append(response.url))
    page.on("console", lambda message: message.type == "error" and seen["errors"].append(message.text))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))

    def on_dialog(dialog):
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


def _column_texts(page, column: int) -> list[str]:
    return page.eval_on_selector_all(
        "table[data-name=leaderboard] tbody tr", f"rows => rows.map(r => r.cells[{column}].textContent.trim())"
    )


def _images_loaded(page) -> list[tuple[str, bool]]:
    return page.eval_on_selector_all(
        "img", "images => images.map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_site_in_a_real_browser(browser_page, served_site, built_site):
    page = browser_page
    seen = _watch(page)
    page.goto(f"{served_site}/index.html", wait_until="load")
    assert page.title().startswith("Leaderboard")

    # The script-tag team name is text in its cell, never markup: no alert, one script per page.
    teams = _column_texts(page, 1)
    assert EVIL_TEAM in teams
    assert page.locator("table[data-name=leaderboard] a", has_text=EVIL_TEAM).count() == 1
    assert page.eval_on_selector_all("script", "s => s.length") == 1

    # Sorting without a server: by team (text), then by rank (numbers) down and up.
    ranks = [int(r) for r in _column_texts(page, 0)]
    assert ranks == sorted(ranks)
    page.click("table[data-name=leaderboard] thead th:nth-child(2) button")
    assert _column_texts(page, 1) == sorted(teams, key=str.lower)
    assert page.get_attribute("table[data-name=leaderboard] thead th:nth-child(2)", "aria-sort") == "ascending"
    page.click("table[data-name=leaderboard] thead th:nth-child(1) button")
    page.click("table[data-name=leaderboard] thead th:nth-child(1) button")
    assert [int(r) for r in _column_texts(page, 0)] == sorted(ranks, reverse=True)
    page.click("table[data-name=leaderboard] thead th:nth-child(1) button")
    assert [int(r) for r in _column_texts(page, 0)] == sorted(ranks)
    page.screenshot(path=str(_artifacts() / "leaderboard-index.png"), full_page=True)

    # Follow the first team's link to its submission page; its plots and case pictures load.
    first_team = _column_texts(page, 1)[0]
    page.click("table[data-name=leaderboard] tbody tr:first-child a")
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/submissions/{built_site.ranked[0]}.html")
    assert first_team in page.inner_text("h1")
    images = _images_loaded(page)
    assert any(src.endswith(".png") for src, _ in images) and any(src.endswith(".svg") for src, _ in images)
    assert all(ok for _, ok in images), images
    page.screenshot(path=str(_artifacts() / "leaderboard-submission.png"), full_page=True)

    # The evil team's own page shows its name as the heading text.
    page.goto(f"{served_site}/index.html", wait_until="load")
    page.click(f"table[data-name=leaderboard] a:text-is('{EVIL_TEAM}')")
    page.wait_for_load_state("load")
    assert EVIL_TEAM in page.inner_text("h1")

    for name in ("compare.html", "breakdowns.html", "rules.html"):
        page.goto(f"{served_site}/{name}", wait_until="load")
        assert all(ok for _, ok in _images_loaded(page)), name
    assert page.locator("table").count() >= 2

    assert seen["dialogs"] == []
    assert seen["failed"] == []
    assert seen["errors"] == [], seen["errors"]
    outside = [url for url in seen["requests"] if not url.startswith(served_site)]
    assert outside == [], f"the site asked for outside resources: {outside}"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_site_from_the_file_system(browser_page, built_site):
    """Opened from disk (file://), images load and sorting works: no server is needed."""
    page = browser_page
    seen = _watch(page)
    page.goto((built_site.out / "compare.html").as_uri(), wait_until="load")
    images = _images_loaded(page)
    assert images and all(ok for _, ok in images), images
    page.click("table[data-name=stability] thead th:nth-child(2) button")
    assert page.get_attribute("table[data-name=stability] thead th:nth-child(2)", "aria-sort") == "ascending"
    assert seen["errors"] == [], seen["errors"]
    assert all(url.startswith("file://") for url in seen["requests"])


@pytest.fixture(scope="module")
def hidden_outputs(tmp_path_factory):
    """A hidden phase whose containers print pixels and case names into their logs, built for three audiences."""
    from .conftest import build_audiences

    built = build_audiences(tmp_path_factory.mktemp("hidden-browser"), team="crashy", draws=10)
    return {"public": built.public, "team": built.team, "organizer": built.organizer,
            "submissions": built.site.submissions}


def _visible(page, url: str) -> tuple[str, list[tuple[str, bool]]]:
    page.goto(url, wait_until="load")
    return page.inner_text("body"), _images_loaded(page)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_each_audience_sees_what_the_hidden_phase_allows_in_a_real_browser(browser_page, hidden_outputs):
    from .conftest import CASES, PIXELS

    page = browser_page
    crashy = next(s for s in hidden_outputs["submissions"] if s.team == "crashy")
    public, team, organizer = (hidden_outputs[k] for k in ("public", "team", "organizer"))

    for path in sorted(public.out.rglob("*.html")):
        text, images = _visible(page, path.as_uri())
        assert not [case for case in CASES if case in text], path.name
        assert PIXELS not in text and not [src for src, _ in images if "case-" in src], path.name

    text, _ = _visible(page, (team.out / "index.html").as_uri())
    assert "Private report for team crashy" in text
    assert page.locator("table[data-name=submissions] tbody tr").count() == 1
    text, images = _visible(page, (team.out / "submissions" / f"{crashy.id}.html").as_uri())
    shown_cases = page.eval_on_selector_all("table[data-name=jobs] tbody tr",
                                            "rows => rows.map(r => r.cells[0].textContent.trim())")
    assert sorted(shown_cases) == sorted(job.case for job in crashy.jobs)
    assert "exited with code 1" in text and PIXELS not in text
    assert not [src for src, _ in images if "case-" in src]
    page.screenshot(path=str(_artifacts() / "team-report-submission.png"), full_page=True)

    text, images = _visible(page, (organizer.out / "submissions" / f"{crashy.id}.html").as_uri())
    pictures = [(src, ok) for src, ok in images if "case-" in src]
    assert pictures and all(ok for _, ok in pictures), pictures
    assert PIXELS in text
    text, _ = _visible(page, (organizer.out / "cases.html").as_uri())
    assert all(case in text for case in CASES)
    page.screenshot(path=str(_artifacts() / "organizer-cases.png"), full_page=True)
