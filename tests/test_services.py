"""Backends are chosen by URL in one place: the defaults under the data directory, one
connection for one SQLite file, and a clear refusal for a scheme profd has no backend for."""

from __future__ import annotations

from pathlib import Path

import pytest

from profd.services import UnknownBackend, open_blobs, open_bus, open_directory, open_index, open_services
from profd.settings import Settings, sqlite_path, sqlite_url
from profd.store.sqlite import SqliteBackend


def test_every_backend_defaults_to_a_file_under_the_data_directory(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path / "data")
    index_file = f"sqlite:///{tmp_path / 'data' / 'index.sqlite3'}"
    assert settings.index_url == settings.directory_url == index_file
    assert settings.bus_url == f"sqlite:///{tmp_path / 'data' / 'bus.sqlite3'}"
    assert Settings.load(data_dir="relative").index_url == "sqlite:///relative/index.sqlite3"
    services = open_services(settings)
    try:
        # One file, one connection: outcomes and has_profiles are written together.
        assert services.directory is services.index is services.reads
        assert isinstance(services.index, SqliteBackend)
        assert services.index.path == tmp_path / "data" / "index.sqlite3"
    finally:
        services.close()


def test_urls_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFD_INDEX_URL", sqlite_url(tmp_path / "elsewhere.sqlite3"))
    monkeypatch.setenv("PROFD_DIRECTORY_URL", sqlite_url(tmp_path / "elsewhere.sqlite3"))
    monkeypatch.setenv("PROFD_BUS_URL", sqlite_url(tmp_path / "queue.sqlite3"))
    services = open_services(Settings.load(data_dir=tmp_path / "data"))
    try:
        services.default_project()
    finally:
        services.close()
    assert (tmp_path / "elsewhere.sqlite3").exists() and (tmp_path / "queue.sqlite3").exists()
    assert not (tmp_path / "data" / "index.sqlite3").exists()


def test_sqlite_urls_name_relative_and_absolute_files() -> None:
    assert sqlite_path("sqlite:///data/index.sqlite3") == Path("data/index.sqlite3")
    assert sqlite_path("sqlite:////var/lib/profd/index.sqlite3") == Path("/var/lib/profd/index.sqlite3")
    assert sqlite_path(sqlite_url(Path("/a/b.sqlite3"))) == Path("/a/b.sqlite3")
    for bad in ("sqlite:///", "postgres://host/db", "/plain/path"):
        with pytest.raises(ValueError):
            sqlite_path(bad)


@pytest.mark.parametrize(
    ("opener", "url", "setting"),
    [
        (open_index, "clickhouse://localhost/profd", "index_url"),
        (open_directory, "postgresql://localhost/profd", "directory_url"),
        (open_bus, "amqp://localhost:5672", "bus_url"),
        (open_blobs, "ftp://example.com/blobs", "blob_url"),
        (open_index, "/no/scheme.sqlite3", "index_url"),
    ],
)
def test_an_unknown_scheme_is_refused_by_name(opener: object, url: str, setting: str) -> None:
    with pytest.raises(UnknownBackend) as refused:
        opener(url)  # type: ignore[operator]
    assert setting in str(refused.value) and repr(url) in str(refused.value)
    assert "sqlite" in str(refused.value) or "file" in str(refused.value)


def test_an_unknown_scheme_in_the_settings_stops_startup(tmp_path: Path) -> None:
    with pytest.raises(UnknownBackend, match="'clickhouse'"):
        open_services(Settings.load(data_dir=tmp_path, index_url="clickhouse://localhost/profd"))


def test_the_directory_and_the_index_must_share_an_sqlite_file(tmp_path: Path) -> None:
    settings = Settings.load(
        data_dir=tmp_path,
        index_url=sqlite_url(tmp_path / "a.sqlite3"),
        directory_url=sqlite_url(tmp_path / "b.sqlite3"),
    )
    with pytest.raises(ValueError, match="same SQLite file"):
        open_services(settings)
