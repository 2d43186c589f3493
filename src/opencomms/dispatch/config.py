"""How a worker behaves: batch size, leases, retries, and the sandbox's timing."""

import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any


def _default_worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


# Environment variable -> field, for `WorkerConfig.from_env`.
ENVIRONMENT = {
    "OPENCOMMS_WORKER_ID": "worker_id",
    "OPENCOMMS_BATCH_SIZE": "batch_size",
    "OPENCOMMS_LEASE_SECONDS": "lease_seconds",
    "OPENCOMMS_POLL_INTERVAL": "poll_interval",
    "OPENCOMMS_MAX_ATTEMPTS": "max_attempts",
    "OPENCOMMS_VALIDITY_SECONDS": "validity_seconds",
    "OPENCOMMS_BACKOFF_BASE": "backoff_base",
    "OPENCOMMS_BACKOFF_MAX": "backoff_max",
    "OPENCOMMS_SANDBOX_DELAY": "sandbox_delay",
    "OPENCOMMS_SANDBOX_LATENCY": "sandbox_latency",
    "OPENCOMMS_RECEIPT_TIMEOUT": "receipt_timeout",
    "OPENCOMMS_SEND_CONCURRENCY": "send_concurrency",
    "OPENCOMMS_WORKER_LANES": "lanes",
}


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
    sandbox_delay: float = 0.0  # seconds from SENT to the sandbox's DELIVERED receipt
    sandbox_latency: float = 0.0  # seconds each sandbox send takes (a network round trip)
    receipt_timeout: float = 30.0  # a receipt this overdue is asked of the channel
    send_concurrency: int = 100  # hand-offs in flight at once within a batch
    # Batches in progress at once in one worker: while one waits for the database (SQL,
    # fsync), the other renders and sends, so neither the CPU nor the disk sits idle.
    lanes: int = 2
    unmatched_receipt_ttl: float = 24 * 3600  # receipts no attempt claimed are kept this long

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "WorkerConfig":
        """Defaults overridden by OPENCOMMS_* variables (see ENVIRONMENT)."""
        env = os.environ if environ is None else environ
        types: dict[str, Callable[[str], Any]] = {
            f.name: f.type if callable(f.type) else str for f in fields(cls)
        }
        given = {name: types[name](env[var]) for var, name in ENVIRONMENT.items() if env.get(var)}
        return cls(**given)
