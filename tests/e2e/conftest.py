from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import Server, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `profd serve` shared by the end-to-end tests of a run."""
    running = start_server(tmp_path_factory.mktemp("serve"))
    yield running
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert running.stop() in (0, -15)


# Debian's chromium as root: no sandbox, no GPU, and no background traffic to Google (its
# connections are refused here, many at a time).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable(reason: str) -> None:
    """Skip, unless CI said the browser tests may not (PROFD_REQUIRE_BROWSER=1)."""
    if os.environ.get("PROFD_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (PROFD_REQUIRE_BROWSER=1: the browser tests may not skip)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium (Debian's, driven by Playwright) for a module's tests."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        unavailable("chromium is not installed: `make browser` (as root) installs Debian's")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
