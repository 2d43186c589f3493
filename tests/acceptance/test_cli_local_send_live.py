"""A local `opencomms send` delivered by a running server's worker, as in the README's tour.
Apart from test_cli_local_send.py, whose tests need no worker to be running."""

from pathlib import Path

from tests.acceptance.server import ServerProcess
from tests.acceptance.test_cli_local_send import check_delivered, people, send_json

__all__ = ["people"]  # a fixture


def test_the_servers_worker_delivers_a_local_send(
    live_server: ServerProcess, people: Path, tmp_path: Path
) -> None:
    sent = send_json(
        live_server, tmp_path, "--csv", str(people), "--text", "Hi {{ name }}",
        "--from", "+15005550006",
    )  # fmt: skip
    check_delivered(live_server, sent)
