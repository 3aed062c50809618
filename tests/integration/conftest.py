"""The integration tests' shared fixture: a real PostgreSQL server per module that asks for one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres_server import BIN, Server


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    assert BIN is not None
    server = Server(BIN)
    try:
        server.start()
        yield server
    finally:
        server.stop()
