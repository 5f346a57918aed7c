"""`profd tokens create --scope` and `profd tokens list`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from profd.cli import app
from profd.services import open_directory
from profd.settings import Settings
from profd.store.tenancy import SCOPES

runner = CliRunner()


def test_tokens_get_every_scope_unless_told_and_are_listed_with_them(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    full = runner.invoke(app, ["tokens", "create", "--data-dir", data])
    assert full.exit_code == 0, full.output
    made = runner.invoke(
        app,
        [
            "tokens",
            "create",
            "--data-dir",
            data,
            "--name",
            "ci",
            "--scope",
            "project:releases",
            "--scope",
            "org:read",
        ],
    )
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("profd_") and "\n" not in secret
    directory = open_directory(Settings.load(data_dir=Path(data)).directory_url)
    token = directory.token_for_secret(secret)
    directory.close()
    assert token is not None and (token.name, token.scopes) == ("ci", ("org:read", "project:releases"))
    listed = runner.invoke(app, ["tokens", "list", "--json", "--data-dir", data])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["scopes"], r["revoked"]) for r in rows] == [
        ("", list(SCOPES), False),
        ("ci", ["org:read", "project:releases"], False),
    ]
    assert secret not in listed.stdout
    table = runner.invoke(app, ["tokens", "list", "--data-dir", data])
    assert table.exit_code == 0 and "project:releases" in table.stdout and secret not in table.stdout


@pytest.mark.parametrize("scope", ["org:write", "project:read", "ORG:READ", ""])
def test_an_unknown_scope_is_a_usage_error(tmp_path: Path, scope: str) -> None:
    data = tmp_path / "data"
    result = runner.invoke(
        app, ["tokens", "create", "--data-dir", str(data), "--scope", "org:read", "--scope", scope]
    )
    assert result.exit_code == 2, result.output
    assert "unknown scope" in result.output and "org:admin" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not data.exists()  # refused before anything was opened or created
