"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium, never a browser download)
against real servers. Each page a test visits is saved as a screenshot under test-output/screenshots.
A page may reach only the server under test: any request elsewhere fails the test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT

CHROMIUM = Path(os.environ.get("VIX_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = ROOT / "test-output" / "screenshots"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Playwright's sync API keeps an asyncio loop running in this
    thread while it is open, so it must close before other modules call ``asyncio.run``."""
    if not CHROMIUM.is_file():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


class Pages:
    """Opens pages on one server, each in its own context (own credentials, own viewport)."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[Any] = []
        self.outside: list[str] = []  # requests that tried to leave the server under test
        self.errors: list[str] = []

    def open(self, auth: tuple[str, str] | None = None, viewport: dict[str, int] | None = None) -> Any:
        credentials = {"username": auth[0], "password": auth[1]} if auth else None
        context = self.browser.new_context(
            base_url=self.base_url,
            http_credentials=credentials,
            viewport=viewport or {"width": 1280, "height": 900},
        )
        context.route("**/*", self._guard)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.set_default_timeout(30_000)
        return page

    def _guard(self, route: Any) -> None:
        url = route.request.url
        if url.startswith((self.base_url, "blob:", "data:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Any, ui_server: Any) -> Iterator[Pages]:
    opened = Pages(browser, ui_server.url)
    yield opened
    opened.close()
    assert opened.outside == [], f"pages asked for something outside this server: {opened.outside}"
    assert opened.errors == [], f"scripts failed in the page: {opened.errors}"


@pytest.fixture(scope="session", autouse=True)
def _screenshots_folder() -> None:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True, exist_ok=True)


def shot(page: Any, name: str) -> Path:
    """Save what the page shows now (the whole page) as test-output/screenshots/<name>.png."""
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
