"""Server settings, from command-line options with environment twins."""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from opencomms.store.db import sqlite_path

DEFAULT_DATABASE_URL = "sqlite:///opencomms.db"
SECRET_FILE = "opencomms.secret"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""
    public_url: str | None = None  # base URL clients reach us at, when behind a proxy
    max_body_bytes: int = 20 * 1024 * 1024


def server_key(database_url: str) -> str:
    """OPENCOMMS_SECRET_KEY, or a key generated once and kept beside the SQLite file.

    PostgreSQL deployments with several machines must share one key through the variable;
    without it the key file goes in the working directory.
    """
    from_env = os.environ.get("OPENCOMMS_SECRET_KEY")
    if from_env:
        return from_env
    db_file = sqlite_path(database_url)
    folder = db_file.parent if db_file is not None else Path.cwd()
    key_file = folder / SECRET_FILE
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(32)
    folder.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_text(key + "\n")
    return key
