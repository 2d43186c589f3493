"""Schema migrations with Alembic, run on the application's own async engine."""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from opencomms.store.db import Database

_SCRIPTS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


async def upgrade(db: Database) -> None:
    """Brings the schema to the newest revision."""
    config = _config()

    def run(sync_conn: Any) -> None:
        config.attributes["connection"] = sync_conn
        command.upgrade(config, "head")

    async with db.write() as conn:
        await conn.run_sync(run)


async def is_current(db: Database) -> bool:
    head = ScriptDirectory.from_config(_config()).get_current_head()

    def current(sync_conn: Any) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with db.read() as conn:
        return await conn.run_sync(current) == head
