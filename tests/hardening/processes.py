"""Server processes for the hardening tests: `opencomms serve` with limits of our choosing."""

import os
import resource
import secrets
import subprocess
import sys
from pathlib import Path

from tests.acceptance.server import ServerProcess, free_port, wait_ready

_ROOT = Path(__file__).resolve().parents[2]  # the repository, so `tests` imports in the child


def launch(
    database_url: str,
    workdir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    open_files: int | None = None,
    credentials: tuple[str, str] | None = None,
    module: str = "opencomms",
) -> ServerProcess:
    """Starts a server and waits until it is ready; `open_files` lowers its RLIMIT_NOFILE;
    `module` runs another entry point with the same arguments (tests/hardening/crash_on_202)."""
    port = free_port()
    sid, token = credentials or ("AC" + secrets.token_hex(16), secrets.token_hex(16))
    log = workdir / f"server-{port}.log"
    environment = {
        **os.environ,
        "OPENCOMMS_ACCOUNT_SID": sid,
        "OPENCOMMS_AUTH_TOKEN": token,
        "OPENCOMMS_SECRET_KEY": "hardening-key",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])),
        **(env or {}),
    }

    def limit_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    command = [sys.executable, "-m", module, "serve", "--port", str(port)]
    command += ["--database-url", database_url, *extra]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_files,  # noqa: PLW1509 (no threads in the child yet)
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", sid, token, log, database_url)
    wait_ready(server, timeout=60)
    return server
