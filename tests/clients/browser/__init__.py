"""@sentry/browser from npm, loaded by a page as the ES modules npm ships, for the CORS test.

The npm package ships no ready-made bundle (those are on Sentry's CDN), only ES modules that
import their sibling packages by name. An import map in the page resolves those names to files
under node_modules, so nothing is bundled and no second npm package (a bundler) is needed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSION = "11.12.0"
# Every package name the modules of @sentry/browser VERSION import (found with grep over
# node_modules). A name missing here fails the page with "Failed to resolve module specifier".
SPECIFIERS = (
    "@sentry/browser",
    "@sentry/browser-utils",
    "@sentry/conventions/attributes",
    "@sentry/conventions/metrics",
    "@sentry/conventions/op",
    "@sentry/core",
    "@sentry/core/browser",
    "@sentry/feedback",
    "@sentry/replay",
    "@sentry/replay-canvas",
    "web-vitals",
)
# Resolved by node itself, with the "browser" condition a bundler would use, so the map
# follows each package's "exports" exactly.
RESOLVE = """
const names = JSON.parse(process.argv[1]);
console.log(JSON.stringify(Object.fromEntries(names.map((name) => [name, import.meta.resolve(name)]))));
"""


def npm_available() -> bool:
    return shutil.which("npm") is not None and shutil.which("node") is not None


def install(directory: Path) -> Path:
    """A directory to serve: node_modules with @sentry/browser VERSION, and the page that
    loads it (kept between runs in `directory`)."""
    project = directory / f"sentry-browser-{VERSION}"
    marker = project / "node_modules" / "@sentry" / "browser" / "package.json"
    if not marker.exists() or json.loads(marker.read_text())["version"] != VERSION:
        project.mkdir(parents=True, exist_ok=True)
        (project / "package.json").write_text(json.dumps({"name": "profd-e2e-browser", "private": True}))
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", f"@sentry/browser@{VERSION}"],
            cwd=project,
            check=True,
            timeout=600,
        )
    resolved = subprocess.run(
        ["node", "--conditions=browser", "--input-type=module", "-e", RESOLVE, json.dumps(SPECIFIERS)],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    root = project.resolve().as_uri()
    imports = {name: url.removeprefix(root) for name, url in json.loads(resolved.stdout).items()}
    assert all(url.startswith("/node_modules/") for url in imports.values()), imports
    # Import maps must be inline: Chromium does not load one from a src= attribute.
    page = (HERE / "page.html").read_text().replace("{{IMPORTMAP}}", json.dumps({"imports": imports}))
    (project / "index.html").write_text(page)
    shutil.copy(HERE / "page.js", project / "page.js")
    return project
