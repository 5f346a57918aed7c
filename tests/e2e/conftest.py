from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.server import Server, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `profd serve` shared by the end-to-end tests of a run."""
    running = start_server(tmp_path_factory.mktemp("serve"))
    yield running
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert running.stop() in (0, -15)
