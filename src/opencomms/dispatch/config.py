"""How a worker behaves: batch size, leases, retries. Built by opencomms.config.load_settings
from the `[worker]` section and OPENCOMMS_* variables (ENVIRONMENT there)."""

import os
import secrets
import socket
from dataclasses import dataclass, field


def _default_worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: str = field(default_factory=_default_worker_id)
    # Messages claimed (and written) per transaction: 1,000 drains 100,000 sandbox messages
    # on SQLite over a quarter faster than 500 (bench/drain.py); larger batches hold the
    # SQLite write lock longer against API writes for little more.
    batch_size: int = 1000
    lease_seconds: float = 30.0  # a dead worker's messages go to another after this
    poll_interval: float = 0.5  # the safety-net poll, also what bounds a schedule's lateness
    max_attempts: int = 5  # hand-offs per message before it FAILS with 30001
    validity_seconds: float = 4 * 3600  # from creation; past it a message FAILS with 30036
    backoff_base: float = 1.0  # first retry delay; doubles per attempt, with jitter
    backoff_max: float = 300.0
    receipt_timeout: float = 30.0  # a receipt this overdue is asked of the channel
    send_concurrency: int = 100  # hand-offs in flight at once within a batch
    # Batches in progress at once in one worker: while one waits for the database (SQL,
    # fsync), the other renders and sends, so neither the CPU nor the disk sits idle.
    lanes: int = 2
    unmatched_receipt_ttl: float = 24 * 3600  # receipts no attempt claimed are kept this long
    # A message found this many times with its previous lease lapsed (the worker holding it
    # died or hung each time) is failed with 30412 instead of being tried again.
    max_stalled_claims: int = 3
    send_timeout: float = 120.0  # one hand-off; past it, the attempt's outcome is unknown
    route_retry_max: float = 30.0  # a down route is probed again at most this far apart
