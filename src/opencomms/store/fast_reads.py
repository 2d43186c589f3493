"""The hot reads in constant SQL (store/direct.py runs them): the message list, one message
with its attempts, one operation with its stats.

Same rows, filters and order as store/reads.py (tests/api/test_fast_reads.py compares the
answers); what differs is the cost: the SQL text for each shape of filter is built once,
rows come back as plain tuples, and the JSON columns are decoded straight into them.
"""

from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from opencomms import ids
from opencomms.domain.records import MessageFilter, OperationKind, OperationStats
from opencomms.store.direct import DirectReader, PostgresReader, Statement
from opencomms.store.operation_status import stats_of
from opencomms.store.tables import COUNTER_COLUMNS

_METADATA = (
    "id, operation_id, status, recipient, tags, send_at, sender, created_at, updated_at,"
    " deleted_at, session_id"
)


class MessageRow(NamedTuple):
    """What a message answer shows; JSON columns decoded."""

    id: str
    operation_id: str
    status: str
    recipient: dict[str, Any]
    tags: dict[str, str]
    send_at: int | None
    sender: dict[str, Any] | None
    created_at: int
    updated_at: int
    deleted_at: int | None
    session_id: str | None


class AttemptRow(NamedTuple):
    number: int
    channel: str
    sender: dict[str, Any]
    recipient: list[dict[str, Any]]
    status: str
    attempted_at: int
    error_code: int | None
    error_message: str | None
    external_id: str | None


class MessageDetailRow(NamedTuple):
    message: MessageRow
    variables: dict[str, str]
    content: dict[str, Any] | None  # the rendered content, once dispatch wrote it
    operation_content: dict[str, Any] | None  # to render it from, before that
    attempts: list[AttemptRow]


class OperationRow(NamedTuple):
    id: str
    status: str
    created_at: int
    updated_at: int
    stats: OperationStats


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _message(row: Any) -> MessageRow:
    return MessageRow(
        row[0], row[1], row[2], orjson.loads(row[3]), orjson.loads(row[4]), row[5],
        _loads(row[6]), row[7], row[8], row[9], row[10],
    )  # fmt: skip


# -- The list ---------------------------------------------------------------------------------

_SCALAR_FILTERS = (
    ("operation_id", "operation_id = ?"),
    ("session_id", "session_id = ?"),
    ("start", "created_at >= ?"),
    ("end", "created_at <= ?"),
    ("profile_id", "profile_id = ?"),
    ("channel", "channel = ?"),
    ("status", "status = ?"),
)


@lru_cache(maxsize=512)
def _list_sql(dialect: str, present: tuple[str, ...], tags: int, keyset: bool) -> str:
    where = ["account_sid = ?", "deleted_at IS NULL"]
    where += [clause for name, clause in _SCALAR_FILTERS if name in present]
    tag = "CAST(tags AS jsonb) @> CAST(? AS jsonb)" if dialect == "postgresql" else None
    where += [tag or "json_extract(tags, ?) = ?"] * tags
    where += ["id >= ?", "id < ?"] + (["id < ?"] if keyset else [])
    return f"SELECT {_METADATA} FROM messages WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"


def list_statement(
    dialect: str,
    account_sid: str,
    f: MessageFilter,
    *,
    before_id: str | None,
    limit: int,
    prefix: str = ids.MESSAGE_PREFIX,
) -> Statement:
    """The list's SQL (constant per shape of filter) and its arguments, in order."""
    args: list[Any] = [account_sid]
    present = []
    for name, _ in _SCALAR_FILTERS:
        value = getattr(f, name)
        # As store/reads.py: the dates when given, the rest when not empty.
        if (value is not None) if name in ("start", "end") else value:
            present.append(name)
            args.append(value)
    for key, value in f.tags.items():
        if dialect == "postgresql":
            args.append(orjson.dumps({key: value}).decode())
        else:
            args += [f'$."{key}"', value]
    args += list(ids.prefix_range(prefix))
    if before_id is not None:
        args.append(before_id)
    args.append(limit)
    sql = _list_sql(dialect, tuple(present), len(f.tags), before_id is not None)
    return sql, args


async def list_messages(
    reader: DirectReader,
    dialect: str,
    account_sid: str,
    f: MessageFilter,
    *,
    before_id: str | None,
    limit: int,
) -> list[MessageRow]:
    statement = list_statement(dialect, account_sid, f, before_id=before_id, limit=limit)
    (rows,) = await reader.run([statement])
    return [_message(row) for row in rows]


# -- One message ------------------------------------------------------------------------------

MESSAGE_SQL = (
    "SELECT m.id, m.operation_id, m.status, m.recipient, m.tags, m.send_at, m.sender,"
    " m.created_at, m.updated_at, m.deleted_at, m.session_id, m.variables, m.content,"
    " CASE WHEN m.content IS NULL THEN o.content END"
    " FROM messages m LEFT JOIN operations o"
    " ON o.id = m.operation_id AND o.account_sid = m.account_sid"
    " WHERE m.id = ? AND m.account_sid = ? AND m.deleted_at IS NULL"
)
ATTEMPTS_SQL = (
    "SELECT number, channel, sender, recipient, status, attempted_at, error_code,"
    " error_message, external_id FROM attempts WHERE message_id = ? ORDER BY number"
)


# PostgreSQL: the attempts come with the message as one JSON array, so the read is one
# statement (its own snapshot: no transaction, one round trip instead of four).
PG_MESSAGE_SQL = MESSAGE_SQL.replace(
    " FROM messages m",
    ", (SELECT json_agg(json_build_array(a.number, a.channel, a.sender::json,"
    " a.recipient::json, a.status, a.attempted_at, a.error_code, a.error_message,"
    " a.external_id) ORDER BY a.number) FROM attempts a WHERE a.message_id = m.id)"
    " FROM messages m",
    1,
)


async def message_detail(
    reader: DirectReader, account_sid: str, message_id: str
) -> MessageDetailRow | None:
    """The message, its variables and content (or its operation's) and its attempts, read
    in one snapshot; None if the account has no such message."""
    if isinstance(reader, PostgresReader):
        (found,) = await reader.run([(PG_MESSAGE_SQL, (message_id, account_sid))])
        if not found:
            return None
        row = found[0]
        attempts = [AttemptRow(*a) for a in orjson.loads(row[14] or "[]")]
    else:
        found, tries = await reader.run(
            [(MESSAGE_SQL, (message_id, account_sid)), (ATTEMPTS_SQL, (message_id,))]
        )
        if not found:
            return None
        row = found[0]
        attempts = [
            AttemptRow(a[0], a[1], orjson.loads(a[2]), orjson.loads(a[3]), *a[4:]) for a in tries
        ]
    return MessageDetailRow(
        _message(row), _loads(row[11]) or {}, _loads(row[12]), _loads(row[13]), attempts
    )


# -- One operation ----------------------------------------------------------------------------

# The operation with its stats counters (store/operation_status.py keeps them in the
# transactions that change the statuses they count): one row, whatever the operation's size.
OPERATION_SQL = (
    f"SELECT id, status, created_at, updated_at, {', '.join(COUNTER_COLUMNS)}"
    " FROM operations WHERE id = ? AND account_sid = ? AND kind = ?"
)


async def operation_with_stats(
    reader: DirectReader, account_sid: str, operation_id: str
) -> OperationRow | None:
    """A Message Operation of the account with its stats; None if there is none."""
    args = (operation_id, account_sid, OperationKind.MESSAGES.value)
    (rows,) = await reader.run([(OPERATION_SQL, args)])
    if not rows:
        return None
    row = rows[0]
    stats = stats_of(dict(zip(COUNTER_COLUMNS, row[4:], strict=True)))
    return OperationRow(row[0], row[1], row[2], row[3], stats)
