"""The process's log: one format for every line (API, worker, server), personal data masked,
repeated lines thinned out.

`OPENCOMMS_LOG_FORMAT=json` writes one JSON object per line (`ts`, `level`, `logger`, `msg`
and the line's fields); anything else writes plain text:

    2026-12-03T11:55:00.123Z INFO opencomms.request POST /v1/Messages 202 3.1ms ...

Whatever a line carries, it is masked as it is written: phone numbers keep their first and
last two digits, e-mail addresses lose their local part, sealed tokens and 32-hex secrets are
replaced. Database errors carry no parameters (`hide_parameters` on the engines), and no line
ever carries a request body, so message texts are never written.
"""

import logging
import os
import re
import sys
import time
from typing import Any

import orjson

_PHONE = re.compile(r"(?<![\w+])\+?(\d{3})\d{4,10}(\d{2})(?!\w)")
_EMAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
_SEALED = re.compile(r"gAAAAA[\w-]{16,}=*")  # Fernet: an encrypted auth token
_HEX_SECRET = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


def mask(text: str) -> str:
    """`text` with phone numbers, e-mail addresses and secrets masked."""
    text = _SEALED.sub("[sealed]", text)
    text = _HEX_SECRET.sub("[secret]", text)
    text = _EMAIL.sub(r"***@\1", text)
    return _PHONE.sub(r"+\1***\2", text)


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        if extra:
            line += " " + extra
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return mask(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": mask(record.getMessage()),
        }
        entry.update({k: mask(str(v)) for k, v in _fields(record).items()})
        if record.exc_info:
            entry["exc"] = mask(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


class Thinning(logging.Filter):
    """At most `burst` lines per message template and logger in each `window` seconds; the
    next line that passes says how many were dropped. An outage logs its state, not a flood.
    """

    def __init__(self, burst: int = 5, window: float = 10.0) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._seen: dict[tuple[str, object], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True  # request lines and info are one per event by design
        key = (record.name, record.msg)
        now = time.monotonic()
        start, count, dropped = self._seen.get(key, (now, 0, 0))
        if now - start >= self.window:
            start, count = now, 0
        if count >= self.burst:
            self._seen[key] = (start, count, dropped + 1)
            return False
        if dropped:
            record.msg = f"{record.msg} ({dropped} similar lines dropped)"
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[key] = (start, count + 1, 0)
        return True


def configure(level: str | None = None, fmt: str | None = None) -> None:
    """Sends every logger (uvicorn's too) to stderr in the chosen format."""
    level = (level or os.environ.get("OPENCOMMS_LOG_LEVEL") or "info").upper()
    fmt = fmt or os.environ.get("OPENCOMMS_LOG_FORMAT", "plain")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    handler.addFilter(Thinning())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our request lines replace it
