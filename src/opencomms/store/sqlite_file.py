"""A SQLite database file as OpenComms uses it: the settings every writing connection
takes, and WAL checkpoints kept off the commit path.

By default SQLite checkpoints inside a commit once the write-ahead log passes 1,000 pages, so
the commit that crosses the line also copies the log into the database file and waits for
that file's fsync: a 10,000-recipient send wrote some 2,500 pages of 4 KB, and its commit took
31 ms instead of 15. Here a background thread checkpoints (PASSIVE: it never blocks a reader or a
writer) shortly after writes, and a commit checkpoints itself only if the log has grown far
past that (the thread stalled), which keeps the log bounded either way. A commit of this
process wakes the thread at once, so a stream of large sends has its log copied between
commits and started over, instead of growing to that bound.
"""

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("opencomms.store")

# New files use 16 KB pages: a 10,000-recipient send's transaction (its rows and their three
# indexes) took 51 + 8 ms to insert and commit against 59 + 14 with the default 4 KB, and its
# POST's p50 144 ms against 167 (over HTTP, on a server pinned to one core). Sends of one
# recipient, group-committed at 16 clients, cost the same CPU either way (0.51-0.53 ms).
PAGE_SIZE = 16_384

# A commit checkpoints on its own past this many log pages (64 MB of 16 KB pages; 16 MB for
# a file made with 4 KB pages): the bound on the log if the background checkpoints cannot run.
COMMIT_CHECKPOINT_PAGES = 4096

SETTINGS = (
    # Only a new, empty file takes it (the first statement on it); an existing one keeps the
    # size it was made with.
    f"PRAGMA page_size={PAGE_SIZE}",
    "PRAGMA journal_mode=WAL",
    # FULL: a commit survives power loss, which is what a 202 promises.
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA wal_autocheckpoint={COMMIT_CHECKPOINT_PAGES}",
)

CHECK_INTERVAL_S = 0.2  # between looks at the log; a look with nothing to copy costs microseconds
# Between two looks, however many commits wake the thread: 20 ms cost the drain (5,158-5,307
# msg/s against 5,391-5,467 at 100 ms), and 100 ms still copies a 10k send's log before the
# next such send commits.
MIN_GAP_S = 0.1


class Checkpointer:
    """PASSIVE checkpoints of one database file on a daemon thread, from `start` to `stop`."""

    def __init__(self, path: Path, interval: float = CHECK_INTERVAL_S) -> None:
        self.path = path
        self.interval = interval
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set by kick() and stop()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.checkpoints = 0  # that copied something, for tests
        self._last = (0, 0)  # the log's frames, and those checkpointed, at the last look

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
            self._thread.start()

    def kick(self) -> None:
        """A commit just added to the log: checkpoint now, while the next request is still
        being checked, so the log is copied before the next commit and starts over."""
        self._wake.set()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait(self.interval)  # or look anyway: other processes write too
                self._wake.clear()
                # At most one look per MIN_GAP_S: small commits come by the thousand.
                if self._stopping.wait(MIN_GAP_S):
                    return
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, isolation_level=None)
                        conn.execute("PRAGMA busy_timeout=0")  # busy: try again next time
                    self._checkpoint(conn)
                except sqlite3.Error as error:
                    # A file gone, locked or read-only: the next look tries again, and in
                    # the meantime commits still checkpoint past COMMIT_CHECKPOINT_PAGES.
                    log.debug("checkpoint of %s skipped: %s", self.path, error)
                    if conn is not None:
                        conn.close()
                        conn = None
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied > 0 and (frames, copied) != self._last:
            self.checkpoints += 1
        self._last = (frames, copied)
