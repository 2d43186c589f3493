"""Schema migrations with Alembic, run on the application's own async engine.

Alembic is imported only to migrate: checking that a schema is current, which every start
does, reads the revision ids from the migration files' text and the one row of
`alembic_version` (importing Alembic and loading every migration costs about 0.3 s).
"""

import ast
import re
from pathlib import Path
from typing import Any

from sqlalchemy import text

from opencomms.store.db import Database

_SCRIPTS = Path(__file__).parent / "migrations"
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


def _config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


async def upgrade(db: Database) -> None:
    """Brings the schema to the newest revision (nothing to do, and no Alembic, if it is)."""
    if await is_current(db):
        return
    from alembic import command

    config = _config()

    def run(sync_conn: Any) -> None:
        config.attributes["connection"] = sync_conn
        command.upgrade(config, "head")

    async with db.write() as conn:
        await conn.run_sync(run)


def head_revision() -> str | None:
    """The one head of the migration files, or None if they have several (or it is unclear):
    then Alembic decides."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (_SCRIPTS / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(script.read_text()))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        revisions.add(revision)
        parents.update(down if isinstance(down, tuple | list) else [down] if down else [])
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


async def _current_revisions(db: Database) -> set[str] | None:
    """The revisions the database is at; None without an alembic_version table."""
    async with db.read() as conn:
        table = "alembic_version"
        exists = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, table))
        if not exists:
            return None
        return {row[0] for row in await conn.execute(text(f"SELECT version_num FROM {table}"))}


async def is_current(db: Database) -> bool:
    head = head_revision()
    if head is None:
        return await _alembic_is_current(db)
    return await _current_revisions(db) == {head}


async def _alembic_is_current(db: Database) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()

    def current(sync_conn: Any) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with db.read() as conn:
        return await conn.run_sync(current) == head
