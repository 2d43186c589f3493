"""Starts tests/channels/smsc/server.js (the npm `smpp` package's server) and scripts it.

Used by the SMPP tests and bench/smpp.py. The process listens on free ports of 127.0.0.1 and
prints them; its HTTP control port configures its behaviour and reports what it counted.
"""

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
SERVER = HERE / "server.js"
START_TIMEOUT_S = 15.0


class SmscNotInstalled(RuntimeError):
    pass


class Smsc:
    def __init__(self, port: int, control: int, pid: int = 0) -> None:
        self.pid = pid
        self.host = "127.0.0.1"
        self.port = port
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{control}", timeout=10)

    async def configure(self, **script: Any) -> None:
        (await self.http.post("/config", json=script)).raise_for_status()

    async def reset(self) -> None:
        """Back to the default script with zeroed counters, once the last test's binds left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while (await self.stats())["sessions"] and loop.time() < deadline:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.02)
        (await self.http.post("/reset")).raise_for_status()

    async def stats(self) -> dict[str, int]:
        answer = await self.http.get("/stats")
        answer.raise_for_status()
        result: dict[str, int] = answer.json()
        return result

    async def submits(self) -> list[dict[str, Any]]:
        answer = await self.http.get("/submits")
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()
        return result

    async def bound_as(self, system_id: str) -> int:
        """How many receivers are bound with this system_id."""
        answer = await self.http.get("/stats")
        answer.raise_for_status()
        return int(answer.json()["boundBy"].get(system_id, 0))

    async def inbound(self, **message: Any) -> int:
        answer = await self.http.post("/inbound", json=message)
        answer.raise_for_status()
        parts: int = answer.json()["parts"]
        return parts

    async def receipt(self, message_id: str, stat: str = "DELIVRD", err: int = 0) -> None:
        """Sends the receipt withheld for `message_id` (receiptStat 'NONE')."""
        body = {"id": message_id, "stat": stat, "err": err}
        (await self.http.post("/receipt", json=body)).raise_for_status()

    async def data_sm(self) -> None:
        (await self.http.post("/data_sm")).raise_for_status()

    async def drop(self) -> int:
        answer = await self.http.post("/drop")
        answer.raise_for_status()
        dropped: int = answer.json()["dropped"]
        return dropped

    async def wait_for(self, key: str, value: int, within: float = 5.0) -> dict[str, int]:
        """Polls the stats until `key` reaches `value` (bounded), and returns them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            stats = await self.stats()
            if stats[key] >= value or loop.time() > deadline:
                return stats
            await asyncio.sleep(0.02)


@asynccontextmanager
async def running(*args: str, **script: Any) -> AsyncIterator[Smsc]:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "smpp").is_dir():
        raise SmscNotInstalled("the test SMSC is not installed: run scripts/setup-smsc")
    env = {"SMSC_SCRIPT": json.dumps(script)} if script else {}
    process = await asyncio.create_subprocess_exec(
        node,
        str(SERVER),
        *args,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
        ports = json.loads(line)
        smsc = Smsc(ports["smpp"], ports["control"], process.pid)
        try:
            yield smsc
        finally:
            await smsc.http.aclose()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
