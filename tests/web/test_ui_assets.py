"""Serving the web UI: index.html at `/`, static files under /static, and a clear answer
(not a 500) when `make assets` has not copied the npm libraries yet."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from profd.services import Services
from profd.web.app import STATIC_DIR, VENDOR_FILES, create_app


def static_copy(tmp_path: Path, with_vendor: bool) -> Path:
    """Our own UI files, with or without the vendored libraries."""
    directory = tmp_path / "static"
    shutil.copytree(STATIC_DIR, directory, ignore=shutil.ignore_patterns("vendor"))
    if with_vendor:
        for name in VENDOR_FILES:
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text("/* vendored */")
    return directory


def test_without_the_vendored_libraries_the_ui_says_to_run_make_assets(
    services: Services, tmp_path: Path
) -> None:
    client = TestClient(create_app(services, static_dir=static_copy(tmp_path, False)))
    response = client.get("/")
    assert response.status_code == 503
    assert "make assets" in response.text
    # The rest of the server does not depend on them.
    assert client.get("/health").status_code == 200
    assert client.get("/api/v1/organizations/default/projects").status_code == 401


def test_with_them_the_page_and_its_modules_are_served(services: Services, tmp_path: Path) -> None:
    client = TestClient(create_app(services, static_dir=static_copy(tmp_path, True)))
    page = client.get("/")
    assert page.status_code == 200
    assert '<script type="module" src="/static/app.js">' in page.text
    for referenced in (
        "/static/app.js",
        "/static/style.css",
        "/static/pages/profiles.js",
        "/static/vendor/d3.min.js",
    ):
        response = client.get(referenced)
        assert response.status_code == 200, referenced
        assert response.headers["cache-control"] == "no-cache"
    assert (
        client.get("/static/app.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert client.get("/static/../cli.py").status_code == 404


def test_every_module_the_page_imports_is_there() -> None:
    """A relative import to a missing file would only fail in the browser: check them here."""
    for module in STATIC_DIR.rglob("*.js"):
        if "vendor" in module.parts:
            continue
        for target in re.findall(r'from "(\.{1,2}/[^"]+)"', module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"
