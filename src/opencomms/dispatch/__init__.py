"""The delivery pipeline: workers claim messages, hand them to channels, and follow receipts.

The names below load on first use: `opencomms.dispatch.config` is read by every process's
settings, and importing the dispatcher with it would load every channel (SMTP, DKIM, DNS,
SMPP) into an API process that may never dispatch.
"""

from typing import TYPE_CHECKING

from opencomms import lazy

if TYPE_CHECKING:
    from opencomms.dispatch.config import WorkerConfig
    from opencomms.dispatch.dispatcher import Dispatcher
    from opencomms.dispatch.policy import GiveUp, RetryPolicy
    from opencomms.dispatch.worker import default_dispatcher, run_worker

__all__ = [
    "Dispatcher",
    "GiveUp",
    "RetryPolicy",
    "WorkerConfig",
    "default_dispatcher",
    "run_worker",
]

_HOMES = {
    "Dispatcher": "dispatcher",
    "GiveUp": "policy",
    "RetryPolicy": "policy",
    "WorkerConfig": "config",
    "default_dispatcher": "worker",
    "run_worker": "worker",
}

__getattr__ = lazy.exports(__name__, _HOMES)
