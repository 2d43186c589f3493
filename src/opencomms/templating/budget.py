"""What one render may spend: CPU time, loop iterations, and the size of every value.

Templates come from API callers and variables from their recipients, so a render must stay
small and short whatever they hold. The engine's own limits cap the output stream, capture
buffers, nesting and each loop; these add what it lacks:

- a CPU-time budget (this thread's CPU, so a loaded machine does not fail good templates),
  checked at every node the engine renders and every filter call;
- a total of loop iterations across the whole render (the engine caps each loop alone);
- a cap on every intermediate value: each filter's arguments and result (strings, lists,
  numbers), with the growing filters (`replace`, `join`, `date` widths) checked *before*
  they build their result, so a chain of `append`/`replace` never holds more than the cap.

A request may also share one pool among all its renders (`shared_pool`): accept-time trial
renders for many distinct recipients stop once the request has spent it.
"""

import functools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from liquid.exceptions import ResourceLimitError

MAX_VALUE_CHARS = 256 * 1024  # the same as the output stream: no value outgrows the output
MAX_ITEMS = 10_000  # items of a list (or range) a filter takes or makes
MAX_INT_BITS = 512  # numbers beyond ~10^154 are no personalization
RENDER_CPU_SECONDS = 0.05
TOTAL_LOOP_ITERATIONS = 100_000  # across a render; each single loop is capped at 10,000
REQUEST_CPU_SECONDS = 2.0  # all trial renders of one accepted request together
_CHECK_EVERY = 32  # nodes between two clock reads (a thread-CPU read is a system call)


class BudgetExceeded(ResourceLimitError):
    """A render went past its budget; the message says which limit."""


@dataclass
class Meter:
    """The running account of one render (or of a pool shared by several)."""

    cpu_deadline: float
    iterations_left: int = TOTAL_LOOP_ITERATIONS
    _ticks: int = 0
    pool: "Meter | None" = None

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks % _CHECK_EVERY == 0:
            self.check_time()

    def check_time(self) -> None:
        now = time.thread_time()
        if now > self.cpu_deadline:
            raise BudgetExceeded("time limit reached", token=None)
        if self.pool is not None and now > self.pool.cpu_deadline:
            raise BudgetExceeded("time limit for this request's templates reached", token=None)

    def loop(self, length: int) -> None:
        self.iterations_left -= length
        if self.iterations_left < 0:
            raise BudgetExceeded("loop limit reached", token=None)
        self.check_time()


_unlimited = Meter(cpu_deadline=float("inf"), iterations_left=1 << 62)
_current: ContextVar[Meter] = ContextVar("opencomms_liquid_meter", default=_unlimited)
_pool: ContextVar[Meter | None] = ContextVar("opencomms_liquid_pool", default=None)


def current() -> Meter:
    return _current.get()


@contextmanager
def metered(cpu_seconds: float = RENDER_CPU_SECONDS) -> Iterator[Meter]:
    """Runs one render on a fresh budget (within the request's pool, if one is open)."""
    meter = Meter(cpu_deadline=time.thread_time() + cpu_seconds, pool=_pool.get())
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


@contextmanager
def shared_pool(cpu_seconds: float = REQUEST_CPU_SECONDS) -> Iterator[Meter]:
    """Every render in this block (this thread) shares `cpu_seconds` of CPU between them."""
    pool = Meter(cpu_deadline=time.thread_time() + cpu_seconds)
    token = _pool.set(pool)
    try:
        yield pool
    finally:
        _pool.reset(token)


def _too_big(what: str) -> BudgetExceeded:
    return BudgetExceeded(f"value size limit reached ({what})", token=None)


def check_value(value: object) -> None:
    """Refuses a value past the caps; cheap: only lengths are looked at."""
    # type(), not isinstance(): a strict Undefined raises on any attribute, `__class__` too.
    kind = type(value)
    if issubclass(kind, str):
        if len(value) > MAX_VALUE_CHARS:  # type: ignore[arg-type]
            raise _too_big(f"a string over {MAX_VALUE_CHARS:,} characters")
    elif issubclass(kind, (list, tuple, range, dict)):
        if len(value) > MAX_ITEMS:  # type: ignore[arg-type]
            raise _too_big(f"over {MAX_ITEMS:,} items")
    elif issubclass(kind, int) and value.bit_length() > MAX_INT_BITS:  # type: ignore[attr-defined]
        raise _too_big("a number too large")


def _text(value: object) -> str:
    return value if type(value) is str else str(value)


def _check_length(length: int) -> None:
    if length > MAX_VALUE_CHARS:
        raise _too_big(f"a string over {MAX_VALUE_CHARS:,} characters")


def _replace_all(left: object, seq: object = "", sub: object = "", *_: object) -> None:
    text, old, new = _text(left), _text(seq), _text(sub)
    count = text.count(old) if old else len(text) + 1
    _check_length(len(text) + count * (len(new) - len(old)))


def _replace_one(left: object, _seq: object = "", sub: object = "", *_: object) -> None:
    _check_length(len(_text(left)) + len(_text(sub)))


def _join(left: object, separator: object = " ", *_: object) -> None:
    if isinstance(left, (list, tuple)):
        sizes = sum(len(item) if isinstance(item, str) else 24 for item in left)
        _check_length(sizes + len(_text(separator)) * max(len(left) - 1, 0))


_WIDE_FORMAT = re.compile(r"%[-_0^#]*\d")


def _date(_left: object, fmt: object = "", *_: object) -> None:
    # strftime pads to any width it is given (`%99999999Y`): refuse widths outright.
    if _WIDE_FORMAT.search(_text(fmt)):
        raise BudgetExceeded("date formats with a width are not allowed", token=None)


# Filters whose result can outgrow their inputs by more than a small factor.
_BEFORE: dict[str, Callable[..., None]] = {
    "replace": _replace_all,
    "replace_first": _replace_one,
    "replace_last": _replace_one,
    "join": _join,
    "date": _date,
}


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with its arguments, its growth and its result held to the budget."""
    before = _BEFORE.get(name)

    def guarded(left: object, *args: object, **kwargs: object) -> object:
        current().tick()
        check_value(left)
        for arg in args:
            check_value(arg)
        if before is not None:
            before(left, *args)
        result = func(left, *args, **kwargs)
        check_value(result)
        return result

    # Keeps the engine's markers (`with_environment`, `with_context`, argument checks).
    return functools.update_wrapper(guarded, func)
