"""@sentry/node with @sentry/profiling-node, installed from npm at pinned, equal versions.

Mixed versions of the two make the profiler silently not attach, so both are pinned to the
same release; 9.x sends transaction profiles, 11.x continuous-profiling chunks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS = {"transaction": "9.47.1", "continuous": "11.1.0"}


def npm_available() -> bool:
    return shutil.which("npm") is not None and shutil.which("node") is not None


def install(directory: Path, version: str) -> Path:
    """An npm project with both packages at `version` (kept between runs in `directory`)."""
    project = directory / f"sentry-node-{version}"
    marker = project / "node_modules" / "@sentry" / "profiling-node" / "package.json"
    if not marker.exists() or json.loads(marker.read_text())["version"] != version:
        project.mkdir(parents=True, exist_ok=True)
        (project / "package.json").write_text(json.dumps({"name": f"profd-e2e-{version}", "private": True}))
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                f"@sentry/node@{version}",
                f"@sentry/profiling-node@{version}",
            ],
            cwd=project,
            check=True,
            timeout=600,
        )
    shutil.copy(HERE / "workload.js", project / "workload.js")
    return project


def run_workload(project: Path, dsn: str, mode: str, seconds: float) -> None:
    subprocess.run(
        ["node", "workload.js", dsn, mode, str(seconds)], cwd=project, check=True, timeout=seconds + 120
    )
