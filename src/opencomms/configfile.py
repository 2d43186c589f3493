"""The TOML config file: parsed with tomllib, checked with pydantic, every mistake reported
with the file, line and key it is about (`opencomms.toml:12: senders[1].route: ...`).

Sections: `[server]`, `[worker]`, `[[routes]]`, `[[senders]]`, `[limits]`, `[events]`; see
docs/configuration.md for every key.
"""

import dataclasses
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, create_model

from opencomms.channels.registry import (
    KINDS,
    SANDBOX,
    RouteConfig,
    UnknownChannel,
    kind_of,
    sandbox_route,
)
from opencomms.dispatch.config import WorkerConfig
from opencomms.domain.channels import ChannelType
from opencomms.domain.senders import DeclaredSender

Loc = tuple[str | int, ...]
Model = TypeVar("Model", bound=BaseModel)


class ConfigError(ValueError):
    """The configuration is wrong; every problem found is listed, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    """Request limits per account; 0 means unlimited. Enforced by the API's limiter."""

    requests_per_second: float = Field(0.0, ge=0)
    burst: int = Field(0, ge=0)
    recipients_per_minute: int = Field(0, ge=0)


class Events(_Strict):
    """Event delivery (webhooks) settings, read by the events feature."""

    allowed_networks: tuple[IPvAnyNetwork, ...] = ()
    retention_days: float = Field(7.0, gt=0)
    retry_hours: float = Field(72.0, gt=0)
    attempt_timeout_seconds: float = Field(15.0, gt=0)
    batch_max: int = Field(100, ge=1)


class ServerSection(_Strict):
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    database_url: str | None = None
    public_url: str | None = None
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] | None = None


class _RouteEntry(BaseModel):
    # The kind's own options are the extra keys, checked by the kind's model afterwards.
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    type: str


class _SenderEntry(_Strict):
    channel: ChannelType
    address: str = Field(min_length=1, max_length=320)
    route: str
    mps: float = Field(0.0, ge=0)
    account: str | None = Field(None, pattern=r"^AC[0-9a-f]{32}$")
    display_name: str | None = Field(None, max_length=256)
    tags: dict[str, str] = Field(default_factory=dict)


def _worker_model() -> type[BaseModel]:
    """Every WorkerConfig knob, optional (absent keeps the default), numbers not negative."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(WorkerConfig):
        kind = f.type if isinstance(f.type, type) else str
        constraint = Field(None, ge=0) if kind in (int, float) else Field(None)
        fields[f.name] = (kind | None, constraint)
    model: type[BaseModel] = create_model(
        "WorkerSection", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


WorkerSection = _worker_model()


@dataclass(frozen=True)
class FileConfig:
    """What a config file says, validated; empty sections keep every default."""

    server: ServerSection = dataclasses.field(default_factory=ServerSection)
    worker: dict[str, Any] = dataclasses.field(default_factory=dict)  # only the keys given
    routes: tuple[RouteConfig, ...] = ()
    senders: tuple[DeclaredSender, ...] = ()
    limits: Limits = dataclasses.field(default_factory=Limits)
    events: Events = dataclasses.field(default_factory=Events)


# -- where a key is ------------------------------------------------------------------------

_ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([^\]]+?)\s*\]\]")
_TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
_KEY = re.compile(r"^\s*([\"']?)([A-Za-z0-9_-]+)\1\s*=")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def key_lines(source: str) -> dict[Loc, int]:
    """The line each table and key starts on, by the path pydantic reports errors at
    (`("senders", 1, "mps")`). TOML's own parser keeps no positions, so the text is scanned
    for headers and `key =` lines; keys inside multi-line values are rare enough to ignore."""
    lines: dict[Loc, int] = {}
    counts: dict[str, int] = {}
    current: Loc = ()
    for number, line in enumerate(source.splitlines(), start=1):
        if (match := _ARRAY_TABLE.match(line)) is not None:
            name = match.group(1).strip()
            counts[name] = counts.get(name, 0) + 1
            current = (name, counts[name] - 1)
        elif (match := _TABLE.match(line)) is not None:
            first, *rest = [part.strip() for part in match.group(1).split(".")]
            # A sub-table of the latest array entry (`[senders.tags]` after `[[senders]]`).
            current = (first, counts[first] - 1, *rest) if first in counts else (first, *rest)
        elif (match := _KEY.match(line)) is not None:
            lines.setdefault((*current, match.group(2)), number)
            continue
        else:
            continue
        lines.setdefault(current, number)
    return lines


class _Report:
    def __init__(self, source: str, name: str) -> None:
        self.name = name
        self.lines = key_lines(source)
        self.problems: list[str] = []

    def line_of(self, loc: Loc) -> int | None:
        for end in range(len(loc), 0, -1):
            if (line := self.lines.get(loc[:end])) is not None:
                return line
        return None

    def add(self, loc: Loc, message: str) -> None:
        line = self.line_of(loc)
        where = f"{self.name}:{line}" if line is not None else self.name
        self.problems.append(f"{where}: {dotted(loc)}: {message}")

    def add_errors(self, prefix: Loc, error: ValidationError) -> None:
        for item in error.errors():
            # Drop pydantic's internal steps (union branches, validator names) from the path.
            inner = [p for p in item["loc"] if isinstance(p, int) or _NAME.match(p)]
            loc = (*prefix, *inner)
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                message = "unknown key"
            self.add(loc, message)

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(file)"


# -- parsing -------------------------------------------------------------------------------


def load_file(path: str | Path) -> FileConfig:
    file = Path(path)
    try:
        source = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"{file}: cannot read the config file: {error.strerror}"]) from error
    return parse(source, str(file))


def parse(source: str, name: str = "config") -> FileConfig:
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{name}: not valid TOML: {error}"]) from error
    report = _Report(source, name)
    for key in data.keys() - _SECTIONS.keys():
        report.add((key,), "unknown section")
    server = _section(data, "server", ServerSection, report)
    limits = _section(data, "limits", Limits, report)
    events = _section(data, "events", Events, report)
    worker = _section(data, "worker", WorkerSection, report)
    routes = _routes(_entries(data, "routes", report), report)
    senders = _senders(_entries(data, "senders", report), routes, report)
    report.raise_if_any()
    return FileConfig(
        server or ServerSection(),
        worker.model_dump(exclude_none=True) if worker else {},
        routes,
        senders,
        limits or Limits(),
        events or Events(),
    )


_SECTIONS = {
    "server": dict,
    "worker": dict,
    "limits": dict,
    "events": dict,
    "routes": list,
    "senders": list,
}


def _section(data: dict[str, Any], key: str, model: type[Model], report: _Report) -> Model | None:
    """A table section checked by its model; None when absent or wrong."""
    raw = data.get(key, {})
    if not isinstance(raw, dict):
        report.add((key,), f"must be a table ([{key}])")
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        report.add_errors((key,), error)
        return None


def _entries(data: dict[str, Any], key: str, report: _Report) -> list[Any]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        report.add((key,), f"must be an array of tables ([[{key}]])")
        return []
    return raw


def _routes(entries: list[Any], report: _Report) -> tuple[RouteConfig, ...]:
    routes: list[RouteConfig] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries):
        loc: Loc = ("routes", index)
        try:
            entry = _RouteEntry.model_validate(raw)
        except ValidationError as error:
            report.add_errors(loc, error)
            continue
        if entry.name in seen:
            report.add((*loc, "name"), f"duplicate route name '{entry.name}'")
            continue
        seen.add(entry.name)
        try:
            kind = kind_of(entry.type)
        except UnknownChannel as why:
            report.add((*loc, "type"), str(why))
            continue
        try:
            options = kind.options.model_validate(entry.model_extra or {})
        except ValidationError as error:
            report.add_errors(loc, error)
            continue
        routes.append(RouteConfig(entry.name, entry.type, options))
    return tuple(routes)


def _senders(
    entries: list[Any], routes: tuple[RouteConfig, ...], report: _Report
) -> tuple[DeclaredSender, ...]:
    # With no route declared, the implicit sandbox route is there (opencomms.config adds it).
    by_name = {r.name: r for r in routes} or {SANDBOX: sandbox_route()}
    declared: list[DeclaredSender] = []
    first_seen: dict[tuple[str | None, str, str], int] = {}
    for index, raw in enumerate(entries):
        loc: Loc = ("senders", index)
        try:
            entry = _SenderEntry.model_validate(raw)
        except ValidationError as error:
            report.add_errors(loc, error)
            continue
        route = by_name.get(entry.route)
        if route is None:
            known = ", ".join(sorted(by_name))
            report.add((*loc, "route"), f"unknown route '{entry.route}' (configured: {known})")
            continue
        if entry.channel not in KINDS[route.type].plays:
            report.add(
                (*loc, "channel"),
                f"route '{route.name}' (type {route.type}) cannot carry {entry.channel.value}",
            )
            continue
        key = (entry.account, entry.channel.value, entry.address)
        if key in first_seen:
            earlier = report.line_of(("senders", first_seen[key]))
            report.add(
                (*loc, "address"),
                f"duplicate sender {entry.channel.value} {entry.address}"
                f" (already declared at line {earlier})",
            )
            continue
        first_seen[key] = index
        declared.append(
            DeclaredSender(
                channel=entry.channel,
                address=entry.address,
                route=entry.route,
                mps=entry.mps,
                account_sid=entry.account,
                display_name=entry.display_name,
                tags=dict(entry.tags),
            )
        )
    return tuple(declared)
