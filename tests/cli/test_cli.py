from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from profd.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_process_examples_then_read_the_index(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    rows = [
        json.loads(line)
        for line in invoke(
            "process", "--json", "--data-dir", data, *sorted(map(str, EXAMPLES.glob("*.json")))
        ).splitlines()
    ]
    verdicts = {Path(r["path"]).name: (r["outcome"], r["reason"], r["category"]) for r in rows}
    assert verdicts == {
        "android-transaction.json": ("accepted", None, "profile"),
        "broken-stack.json": ("invalid", "profiling_malformed_stacks", "profile"),
        "node-chunk.json": ("accepted", None, "profile_chunk"),
        "python-transaction.json": ("accepted", None, "profile"),
    }
    profiles = json.loads(invoke("profiles", "list", "--json", "--data-dir", data))
    assert {p["platform"] for p in profiles} == {"android", "python", "node"}
    stored = json.loads(
        invoke("profiles", "show", "5ce7a1a5-e2f4-4c8d-9b1e-1f7a2d6c3b40", "--json", "--data-dir", data)
    )
    assert stored["transaction"]["name"] == "POST /cart/checkout"
    assert stored["profile"]["samples"][0]["thread_id"] == 140211987601216  # SDK string → int
    android = json.loads(
        invoke("profiles", "show", "e3a1c9f0b7d24c6e8f5a4b3c2d1e0f99", "--json", "--data-dir", data)
    )
    assert android["profile"]["methods"][2]["signature"] == "(long[], int): long"
    assert android["device_classification"] == "high"
    outcomes = json.loads(invoke("outcomes", "--json", "--data-dir", data))
    counted = {(o["outcome"], o["reason"], o["category"]): o["quantity"] for o in outcomes}
    assert counted[("accepted", None, "profile_indexed")] == 2
    assert counted[("invalid", "profiling_malformed_stacks", "profile_indexed")] == 1


def test_profiles_list_shows_every_id_whole_in_80_columns(tmp_path: Path) -> None:
    """An id cut short cannot be pasted into `profiles show`: in a terminal of 80 columns
    the other columns give way, never the id."""
    data = str(tmp_path / "data")
    invoke("process", "--data-dir", data, *sorted(map(str, EXAMPLES.glob("*.json"))))
    ids = [p["profile_id"] for p in json.loads(invoke("profiles", "list", "--json", "--data-dir", data))]
    assert len(ids) == 3
    listed = subprocess.run(
        [sys.executable, "-m", "profd", "profiles", "list", "--data-dir", data],
        env={**os.environ, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert max(len(line) for line in listed.splitlines()) <= 80
    for profile_id in ids:
        assert profile_id in listed, (profile_id, listed)


def test_summary_table_and_unsampled_flag(tmp_path: Path) -> None:
    out = invoke("process", "--data-dir", str(tmp_path), str(EXAMPLES / "python-transaction.json"))
    assert "accepted" in out and "profile" in out
    rows = invoke(
        "process", "--json", "--unsampled", "--data-dir", str(tmp_path), str(EXAMPLES / "node-chunk.json")
    )
    assert json.loads(rows)["outcome"] == "skipped"


def test_unreadable_and_garbage_files_are_reported(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x93\x01\x02")
    rows = invoke(
        "process", "--json", "--data-dir", str(tmp_path / "d"), str(garbage), str(tmp_path / "missing.json")
    )
    first, second = (json.loads(line) for line in rows.splitlines())
    assert (first["outcome"], first["reason"]) == ("invalid", "payload")
    assert second["outcome"] == "invalid" and second["reason"].startswith("unreadable")


def test_projects_create_prints_a_dsn(tmp_path: Path) -> None:
    dsn = invoke("projects", "create", "checkout", "--data-dir", str(tmp_path)).strip()
    assert dsn.startswith("http://") and dsn.endswith("@127.0.0.1:8000/2")
    listed = json.loads(invoke("projects", "list", "--json", "--data-dir", str(tmp_path)))
    assert [p["slug"] for p in listed] == ["default", "checkout"]
    assert listed[1]["dsn"] == dsn


def test_a_bad_or_taken_project_name_is_a_usage_error(tmp_path: Path) -> None:
    for name in ("My App", "default"):
        result = runner.invoke(app, ["projects", "create", name, "--data-dir", str(tmp_path)])
        assert result.exit_code == 2 and result.exception is not None
        assert "slug" in result.output or "exists" in result.output, result.output


def test_showing_an_unknown_profile_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["profiles", "show", "nope", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1


def test_functions_prints_the_call_tree_message(tmp_path: Path) -> None:
    import sentry_kafka_schemas

    data = str(tmp_path)
    invoke(
        "process",
        "--data-dir",
        data,
        str(EXAMPLES / "python-transaction.json"),
        str(EXAMPLES / "node-chunk.json"),
    )
    codec = sentry_kafka_schemas.get_codec("profiles-call-tree")
    transaction = codec.decode(
        invoke(
            "functions", "--json", "--data-dir", data, "--profile-id", "5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40"
        ).encode(),
        validate=True,
    )
    assert transaction["transaction_name"] == "POST /cart/checkout" and "profiling_type" not in transaction
    assert [f["function"] for f in transaction["functions"]] == [
        "render",
        "apply_discounts",
        "price_cart",
        "handle_request",
    ]
    chunk = codec.decode(
        invoke(
            "functions", "--json", "--data-dir", data, "--profile-id", "c0ffee1234564bd2a7e8f9d0c1b2a3f4"
        ).encode(),
        validate=True,
    )
    assert chunk["profiling_type"] == "continuous"
    assert chunk["profile_id"] == "a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d"  # chunks report their profiler
    assert {f["function"] for f in chunk["functions"]} == {"resizeImage", "handle"}
    table = invoke("functions", "--data-dir", data, "--profile-id", "5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40")
    assert "render" in table
