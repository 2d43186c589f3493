"""`opencomms send` on the configured database itself, without a server.

The send takes the API's own path (`api.messages.store_send`: the same checks, the same
write) and its progress is read with the API's own presenter, so what the command shows is
what `GET /Messages/Operations/{id}` would answer. The database is async; the command's
progress bar is not: the database lives on an event loop in a thread of its own, and the
command calls into it as it would call a server.
"""

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

import orjson
from sqlalchemy.engine import make_url

from opencomms.api import presenters, wire
from opencomms.api.deps import AppState
from opencomms.api.messages import store_send
from opencomms.cli import runtime
from opencomms.client import MessageOperation
from opencomms.config import Settings
from opencomms.domain.errors import NotFound
from opencomms.store import accounts, reads
from opencomms.store.accounts import SecretBox
from opencomms.store.db import Database

T = TypeVar("T")
WORKER_STOP_SECONDS = 30.0  # a --deliver worker's grace to finish the hand-offs in hand


class AccountNotFound(LookupError):
    """No account to send as: the message says which choice the user has."""


class WorkerStopped(RuntimeError):
    """The worker run by --deliver ended before the messages were final."""

    def __init__(self, cause: BaseException | None) -> None:
        super().__init__(
            f"the delivering worker stopped: {cause!r}"
            if cause
            else "the delivering worker stopped"
        )


class LocalDatabase:
    """The configured database, opened for one command; a context manager."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._db: Database | None = None
        self._state: AppState | None = None
        self._stop = asyncio.Event()
        self._worker: Future[None] | None = None
        self.account_sid = ""

    def __enter__(self) -> "LocalDatabase":
        self._thread.start()
        try:
            # The senders are taken as the database has them: syncing them with this
            # command's config, as `serve` does on start, could undo a running server's.
            self._db = self._run(runtime.open_ready(self.settings.database_url))
        except BaseException:
            self.close()
            raise
        # The send path never opens a sealed secret: no key is generated for it (a worker
        # started by `deliver` finds or makes the key as `opencomms worker` does).
        box = SecretBox(self.settings.secret_key)
        self._state = AppState(db=self._db, box=box, public_url=None, settings=self.settings)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @property
    def db(self) -> Database:
        assert self._db is not None, "use LocalDatabase as a context manager"
        return self._db

    @property
    def url(self) -> str:
        """The database's URL as configured, without its password, to name it in messages."""
        return str(make_url(self.settings.database_url).render_as_string(hide_password=True))

    def use_account(self, sid: str | None) -> str:
        """Picks the account to send as: the one named (an API key names its account), or
        the only one there is. Raises AccountNotFound."""
        self.account_sid = self._run(self._account(sid))
        return self.account_sid

    async def _account(self, sid: str | None) -> str:
        async with self.db.read() as conn:
            if sid is not None and sid.startswith("SK"):
                keys = await accounts.list_api_keys(conn)
                found = next((k.account_sid for k in keys if k.sid == sid), None)
                if found is None:
                    raise AccountNotFound(f"no API key {sid} in {self.url}")
                return found
            if sid is not None:
                if not await accounts.account_exists(conn, sid):
                    raise AccountNotFound(
                        f"no account {sid} in {self.url} (to send through a server, give --url)"
                    )
                return sid
            existing = await accounts.list_accounts(conn)
        if len(existing) == 1:
            return existing[0].sid
        if not existing:
            raise AccountNotFound(
                f"no account in {self.url}: run `opencomms accounts create`, or send through "
                "a server with --url (or OPENCOMMS_URL)"
            )
        raise AccountNotFound(
            f"{len(existing)} accounts in {self.url}: name one with --account-sid "
            "(or OPENCOMMS_ACCOUNT_SID)"
        )

    def send(self, body: dict[str, Any]) -> str:
        """Checks and writes the send as `POST /Messages` does; the operation's id.
        Raises ValidationFailed with every problem, as the API answers 400."""
        assert self._state is not None and self.account_sid, "use_account first"
        return self._run(store_send(self._state, self.account_sid, orjson.dumps(body)))

    def get_operation(self, operation_id: str) -> MessageOperation:
        """The operation as `GET /Messages/Operations/{id}` shows it. Raises WorkerStopped
        if the worker `deliver` started has ended: nothing would move any more."""
        if self._worker is not None and self._worker.done():
            raise WorkerStopped(self._worker.exception())
        return self._run(self._operation(operation_id))

    async def _operation(self, operation_id: str) -> MessageOperation:
        async with self.db.read() as conn:
            record = await reads.get_operation(conn, self.account_sid, operation_id)
            if record is None:
                raise NotFound(f"Operation {operation_id}")
            stats = await reads.operation_stats(conn, [operation_id])
        shown = presenters.operation(record, stats[operation_id])
        return MessageOperation.from_wire(wire.dump(shown))

    def deliver(self) -> None:
        """Runs a dispatch worker in this process until the command ends."""
        self._worker = asyncio.run_coroutine_threadsafe(
            runtime.work_on(self.db, self.settings, self._stop), self._loop
        )

    def close(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._run(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    async def _close(self) -> None:
        self._stop.set()
        if self._worker is not None:
            await asyncio.wait_for(asyncio.wrap_future(self._worker), WORKER_STOP_SECONDS)
        if self._db is not None:
            await self._db.dispose()
