"""Settings: every value a process runs with, built in one place and passed down.

Precedence, highest first: a command-line option, an OPENCOMMS_* environment variable, the
TOML config file (`--config` / OPENCOMMS_CONFIG, see opencomms.configfile), the default.
`load_settings` is the one reader of the environment; nothing below it reads variables.
"""

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from opencomms.channels.registry import SANDBOX, RouteConfig, sandbox_route
from opencomms.configfile import (
    ConfigError,
    Events,
    FileConfig,
    Limits,
    WorkerSection,
    dotted,
    load_file,
)
from opencomms.dispatch.config import WorkerConfig
from opencomms.domain.senders import DEFAULT_SENDERS, DeclaredSender
from opencomms.store.db import sqlite_path

DEFAULT_DATABASE_URL = "sqlite:///opencomms.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
SECRET_FILE = "opencomms.secret"

# Environment variable -> WorkerConfig field.
WORKER_ENVIRONMENT = {
    "OPENCOMMS_WORKER_ID": "worker_id",
    "OPENCOMMS_BATCH_SIZE": "batch_size",
    "OPENCOMMS_LEASE_SECONDS": "lease_seconds",
    "OPENCOMMS_POLL_INTERVAL": "poll_interval",
    "OPENCOMMS_MAX_ATTEMPTS": "max_attempts",
    "OPENCOMMS_VALIDITY_SECONDS": "validity_seconds",
    "OPENCOMMS_BACKOFF_BASE": "backoff_base",
    "OPENCOMMS_BACKOFF_MAX": "backoff_max",
    "OPENCOMMS_RECEIPT_TIMEOUT": "receipt_timeout",
    "OPENCOMMS_SEND_CONCURRENCY": "send_concurrency",
    "OPENCOMMS_WORKER_LANES": "lanes",
}


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""  # empty: resolved by `server_key` where one is needed
    public_url: str | None = None  # base URL clients reach us at, when behind a proxy
    max_body_bytes: int = 20 * 1024 * 1024
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    log_level: str = "info"
    # The account `serve` makes sure exists (OPENCOMMS_ACCOUNT_SID / OPENCOMMS_AUTH_TOKEN).
    account_sid: str | None = None
    auth_token: str | None = None
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    routes: tuple[RouteConfig, ...] = (sandbox_route(),)
    # Declared senders; none declared means the default sandbox senders for every account.
    senders: tuple[DeclaredSender, ...] = ()
    limits: Limits = field(default_factory=Limits)
    events: Events = field(default_factory=Events)
    config_file: str | None = None

    @property
    def inventory(self) -> tuple[DeclaredSender, ...]:
        """The senders every account is given: the declared ones, or the defaults."""
        return self.senders or DEFAULT_SENDERS

    def route(self, name: str) -> RouteConfig | None:
        return next((r for r in self.routes if r.name == name), None)


def load_settings(
    *,
    config_file: str | Path | None = None,
    database_url: str | None = None,
    host: str | None = None,
    port: int | None = None,
    public_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from the options given, the environment and the config file; raises
    ConfigError naming every wrong value."""
    env = os.environ if environ is None else environ
    path = config_file or env.get("OPENCOMMS_CONFIG") or None
    file = load_file(path) if path else FileConfig()
    server = file.server
    return Settings(
        database_url=_first(database_url, env.get("OPENCOMMS_DATABASE_URL"), server.database_url)
        or DEFAULT_DATABASE_URL,
        secret_key=env.get("OPENCOMMS_SECRET_KEY", ""),
        public_url=_first(public_url, env.get("OPENCOMMS_PUBLIC_URL"), server.public_url),
        host=_first(host, env.get("OPENCOMMS_HOST"), server.host) or DEFAULT_HOST,
        port=port or _env_port(env) or server.port or DEFAULT_PORT,
        log_level=_first(env.get("OPENCOMMS_LOG_LEVEL"), server.log_level) or "info",
        account_sid=env.get("OPENCOMMS_ACCOUNT_SID") or None,
        auth_token=env.get("OPENCOMMS_AUTH_TOKEN") or None,
        worker=_worker(file.worker, env),
        routes=_routes(file, env),
        senders=file.senders,
        limits=_limits(file.limits, env),
        events=file.events,
        config_file=str(path) if path else None,
    )


# Environment variable -> `[limits]` key: the variable wins over the file, as everywhere.
LIMITS_ENVIRONMENT = {
    "OPENCOMMS_RATE_REQUESTS_PER_SECOND": "requests_per_second",
    "OPENCOMMS_RATE_BURST": "burst",
    "OPENCOMMS_RATE_RECIPIENTS_PER_MINUTE": "recipients_per_minute",
}


def _limits(from_file: Limits, env: Mapping[str, str]) -> Limits:
    given = {name: env[var] for var, name in LIMITS_ENVIRONMENT.items() if env.get(var)}
    if not given:
        return from_file
    try:
        return Limits.model_validate({**from_file.model_dump(), **given})
    except ValidationError as error:
        names = ", ".join(var for var in LIMITS_ENVIRONMENT if env.get(var))
        raise ConfigError([f"{names}: {error.errors()[0]['msg']}"]) from error


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def _env_port(env: Mapping[str, str]) -> int | None:
    raw = env.get("OPENCOMMS_PORT")
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError([f"OPENCOMMS_PORT: '{raw}' is not a port number"])
    return int(raw)


def _worker(from_file: dict[str, Any], env: Mapping[str, str]) -> WorkerConfig:
    given = {name: env[var] for var, name in WORKER_ENVIRONMENT.items() if env.get(var)}
    try:
        from_env = WorkerSection.model_validate(given).model_dump(exclude_none=True)
    except ValidationError as error:
        names = {name: var for var, name in WORKER_ENVIRONMENT.items()}
        raise ConfigError(
            [f"{names.get(str(e['loc'][0]), dotted(e['loc']))}: {e['msg']}" for e in error.errors()]
        ) from error
    return WorkerConfig(**{**from_file, **from_env})


def _routes(file: FileConfig, env: Mapping[str, str]) -> tuple[RouteConfig, ...]:
    """The declared routes; with none, or default senders needing it, the sandbox route
    (timed by OPENCOMMS_SANDBOX_DELAY / OPENCOMMS_SANDBOX_LATENCY)."""
    routes = file.routes
    if not routes or (not file.senders and all(r.name != SANDBOX for r in routes)):
        try:
            delay = float(env.get("OPENCOMMS_SANDBOX_DELAY") or 0)
            latency = float(env.get("OPENCOMMS_SANDBOX_LATENCY") or 0)
        except ValueError as error:
            raise ConfigError([f"OPENCOMMS_SANDBOX_DELAY/LATENCY: {error}"]) from error
        routes = (*routes, sandbox_route(delay, latency))
    return routes


def server_key(settings: Settings) -> str:
    """The configured key, or one generated once and kept beside the SQLite file.

    PostgreSQL deployments with several machines must share one key through the variable;
    without it the key file goes in the working directory.
    """
    if settings.secret_key:
        return settings.secret_key
    db_file = sqlite_path(settings.database_url)
    folder = db_file.parent if db_file is not None else Path.cwd()
    key_file = folder / SECRET_FILE
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(32)
    folder.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_text(key + "\n")
    return key


def with_key(settings: Settings) -> Settings:
    return replace(settings, secret_key=server_key(settings))
