from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.server import ServerProcess, start_server
from tests.conftest import DIALECTS


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server process on the test's database, API only."""
    process = start_server(db_url, tmp_path, "--no-worker")
    yield process
    process.stop()


@pytest.fixture(scope="module", params=DIALECTS)
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server with its worker per module and dialect, for tests that use fresh operations."""
    workdir = tmp_path_factory.mktemp("live")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'opencomms.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    env = {"OPENCOMMS_BACKOFF_BASE": "0.01", "OPENCOMMS_POLL_INTERVAL": "0.05"}
    process = start_server(url, workdir, env=env)
    yield process
    process.stop()
