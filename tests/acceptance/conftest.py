from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.server import ServerProcess, start_server


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server process on the test's database, API only."""
    process = start_server(db_url, tmp_path, "--no-worker")
    yield process
    process.stop()
