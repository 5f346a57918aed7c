from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from profd.services import Services, open_services
from profd.settings import Settings
from tests.kafka_broker import kafka_broker  # noqa: F401  (a session fixture: tansu on loopback)
from tests.servers.s3rver import s3rver_server  # noqa: F401  (a session fixture for every test)

# Sentry's upstream fixtures and our SDK captures live beside the repository, never in it
# (PROFD_SHARED_DIR points elsewhere when the checkout is not next to them).
SHARED = Path(os.environ.get("PROFD_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whole-system tests (a live server, real clients) are `e2e`; the rest are `unit`.
    Tests that also need npm or a browser say so themselves (`npm`, `browser`); tests on a
    Kafka broker are `kafka`, not `unit` (they start one)."""
    e2e = Path(__file__).parent / "e2e"
    for item in items:
        if e2e in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
        elif "kafka_broker" in getattr(item, "fixturenames", ()) or item.get_closest_marker("kafka"):
            item.add_marker(pytest.mark.kafka)
        else:
            item.add_marker(pytest.mark.unit)


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is not here: the conformance inputs live in ../shared")
    return path


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    services = open_services(Settings.load(data_dir=tmp_path / "data"))
    yield services
    services.close()
