"""The delivery pipeline: workers claim messages, hand them to channels, and follow receipts."""

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
