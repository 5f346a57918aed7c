"""The real sentry-cli (npm @sentry/cli), installed once per checkout, pointed at profd."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

VERSION = "3.8.0"


def npm_available() -> bool:
    return shutil.which("npm") is not None


def install(directory: Path) -> Path:
    """sentry-cli, and terser beside it (to make minified bundles with source maps)."""
    project = directory / f"sentry-cli-{VERSION}"
    binary = project / "node_modules" / ".bin" / "sentry-cli"
    if not binary.exists() or not (project / "node_modules" / ".bin" / "terser").exists():
        project.mkdir(parents=True, exist_ok=True)
        (project / "package.json").write_text(json.dumps({"name": "profd-e2e-cli", "private": True}))
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", f"@sentry/cli@{VERSION}", "terser@5"],
            cwd=project,
            check=True,
            timeout=600,
        )
    return binary


def terser(binary: Path) -> Path:
    return binary.parent / "terser"


def run(binary: Path, url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "SENTRY_URL": url + "/",
        "SENTRY_AUTH_TOKEN": token,
        "SENTRY_ORG": "default",
        "SENTRY_PROJECT": "default",
        "SENTRY_LOG_LEVEL": "warn",
    }
    return subprocess.run([str(binary), *args], env=environment, capture_output=True, text=True, timeout=300)
