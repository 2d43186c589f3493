"""The schema, one definition for SQLite and PostgreSQL.

Times are epoch milliseconds (BIGINT): they compare the same way on both dialects and need no
time-zone handling in SQL. JSON payloads are TEXT written with orjson, so both dialects store
them byte for byte alike.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("sid", String(34), primary_key=True),
    Column("auth_token_enc", Text, nullable=False),
    Column("friendly_name", String(256), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("sid", String(34), primary_key=True),
    Column("account_sid", String(34), ForeignKey("accounts.sid"), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("friendly_name", String(256), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

operations = Table(
    "operations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    # SCHEDULED | PROCESSING | COMPLETED | CANCELED, kept equal to the aggregate of its messages
    # by the same transactions that change them.
    Column("status", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("sender", Text, nullable=True),
    Column("send_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_operations_account_id", "account_sid", "id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("operation_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    # The recipient as given (`to` item without its variables) and its variables.
    Column("recipient", Text, nullable=False),
    Column("variables", Text, nullable=True),
    Column("profile_id", String(64), nullable=True),
    Column("tags", Text, nullable=False),
    Column("send_at", BigInteger, nullable=True),
    Column("unaddressable", Boolean, nullable=False, default=False),
    # Set by dispatch: the channel and sender used, the rendered content, the final error.
    Column("channel", String(16), nullable=True),
    Column("sender", Text, nullable=True),
    Column("content", Text, nullable=True),
    Column("error_code", Integer, nullable=True),
    Column("error_message", Text, nullable=True),
    # The queue: due time, attempt count and the lease. `lease_token` is the fencing token:
    # it grows on every claim and every write of a claimed message must present it.
    Column("next_attempt_at", BigInteger, nullable=True),
    Column("attempt_count", Integer, nullable=False, default=0),
    # Which step of the message's plan (messages.plan, decided at accept) is tried next:
    # a permanent failure moves it on (fallback).
    Column("route_index", Integer, nullable=False, default=0, server_default=text("0")),
    Column("lease_token", BigInteger, nullable=False, default=0),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),
    Index("ix_messages_account_id", "account_sid", "id"),
    Index("ix_messages_operation_status", "operation_id", "status"),
    # The claim index: only messages with work left have a due time (final ones hold NULL), so
    # the index stays as small as the backlog however many messages were ever sent.
    Index(
        "ix_messages_due",
        "next_attempt_at",
        sqlite_where=text("next_attempt_at IS NOT NULL"),
        postgresql_where=text("next_attempt_at IS NOT NULL"),
    ),
)

attempts = Table(
    "attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("message_id", String(64), nullable=False),
    Column("operation_id", String(64), nullable=False),
    Column("account_sid", String(34), nullable=False),
    Column("number", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("sender", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempted_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("error_code", Integer, nullable=True),
    Column("error_message", Text, nullable=True),
    # The channel's own id for this hand-off (SMSC message id, provider SID...), for Seek and
    # for matching delivery receipts.
    Column("external_id", String(128), nullable=True),
    # Unique: two workers can never both record attempt N of one message.
    Index("ix_attempts_message", "message_id", "number", unique=True),
    Index("ix_attempts_operation", "operation_id"),
    Index("ix_attempts_external", "external_id"),
)

# Delivery receipts no attempt claimed yet: a receipt can arrive before the send result that
# tells us the channel's id (seen with SMPP). They wait here until that id is recorded.
receipts = Table(
    "receipts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("external_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_code", Integer, nullable=True),
    Column("error_message", Text, nullable=True),
    # False when the channel will report again (DELIVERED before READ).
    Column("final", Boolean, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Index("ix_receipts_external", "external_id"),
    Index("ix_receipts_received", "received_at"),
)

# The sender inventory. Declared in the config file and synced on start (store/senders.py);
# a sender no longer declared is DEACTIVATED, never deleted, so old messages still show it.
senders = Table(
    "senders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("address", String(320), nullable=False),
    Column("route", String(64), nullable=False),
    Column("mps", Float, nullable=False, default=0.0),
    Column("display_name", String(256), nullable=True),
    Column("status", String(16), nullable=False),
    Column("tags", Text, nullable=False, default="{}"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_senders_account_address", "account_sid", "channel", "address", unique=True),
)

# Pools are created through the API; their members are senders of the same account.
sender_pools = Table(
    "sender_pools",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("name", String(256), nullable=False),
    Column("tags", Text, nullable=False, default="{}"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),
    Index("ix_sender_pools_account_id", "account_sid", "id"),
)

sender_pool_senders = Table(
    "sender_pool_senders",
    metadata,
    Column("pool_id", String(64), primary_key=True),
    Column("sender_id", String(64), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_sender_pool_senders_sender", "sender_id"),
)

# What a pool create or member change did (the spec's SenderPoolOperation).
sender_pool_operations = Table(
    "sender_pool_operations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("pool_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total", Integer, nullable=False, default=0),
    Column("queued", Integer, nullable=False, default=0),
    Column("created", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_sender_pool_operations_account_id", "account_sid", "id"),
)

# Migration 0003: routes, plans and pacing. Columns added to existing tables are declared
# here so the metadata matches the migrated schema.
messages.append_column(
    # The routes planned at accept time, in fallback order, as compact JSON:
    # [[sender_id, route, channel, sender_address, to_index], ...]; `route_index` points in it.
    Column("plan", Text, nullable=True)
)
messages.append_column(Column("sender_id", String(64), nullable=True))  # the current step's
# The pacing slot (epoch ms) reserved for this message's next hand-off, if its sender is paced.
messages.append_column(Column("paced_at", BigInteger, nullable=True))
Index(
    "ix_messages_sender_pending",
    messages.c.sender_id,
    sqlite_where=text("next_attempt_at IS NOT NULL"),
    postgresql_where=text("next_attempt_at IS NOT NULL"),
)
attempts.append_column(Column("route", String(64), nullable=True))

# Each paced sender's schedule, shared by every worker: the earliest time (epoch ms, with
# fractions) its next hand-off may take (a GCRA "theoretical arrival time").
sender_pacing = Table(
    "sender_pacing",
    metadata,
    Column("sender_id", String(64), primary_key=True),
    Column("next_slot", Float, nullable=False),
)

# Further ids a channel gave one hand-off (the parts of a long SMS), each naming the
# attempt's own external_id: a receipt for any part applies to the attempt.
attempt_parts = Table(
    "attempt_parts",
    metadata,
    Column("external_id", String(128), primary_key=True),
    Column("primary_id", String(128), nullable=False),
)

# -- The sandbox inbox, inbound messages and opt-outs (issue 12) ------------------------------

# The conversation an inbound message belongs to (domain/sessions.py derives the id from the
# account, the sender and the remote address), so replies and sends thread together.
messages.append_column(Column("session_id", String(64), nullable=True))
# Partial (migration 0011): a message has a session only once dispatched or received, so an
# accept writes no entry here; `session_id = ?` implies the index's condition on both dialects.
# With the id last, a session's page comes out of it in order.
Index(
    "ix_messages_session",
    messages.c.account_sid,
    messages.c.session_id,
    messages.c.id,
    sqlite_where=text("session_id IS NOT NULL"),
    postgresql_where=text("session_id IS NOT NULL"),
)

# The sandbox inbox is derived from attempt rows, never copied, so dispatch writes nothing
# more for it. A DELETE records a clear here instead of touching attempts: every sandbox
# delivery of the account up to `up_to_attempt` (optionally only to one address, or of one
# operation) is hidden from then on.
sandbox_clears = Table(
    "sandbox_clears",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("account_sid", String(34), nullable=False),
    Column("to_address", String(320), nullable=True),
    Column("operation_id", String(64), nullable=True),
    Column("up_to_attempt", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Migration 0010d: the inbox cleared, MESSAGES or EMAILS; NULL (older clears): both.
    Column("kind", String(16), nullable=True),
    Index("ix_sandbox_clears_account", "account_sid"),
)

# STOP/START replies, per sender address and remote address, as carriers keep them. A row
# exists once a number has sent either keyword; `opted_out` says which came last.
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("account_sid", String(34), primary_key=True),
    Column("sender_address", String(320), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("opted_out", Boolean, nullable=False),
    Column("keyword", String(16), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Events (events/): the outbox, its sinks, subscriptions and per-sink delivery state.
# An event row is written in the transaction of the change it describes, so none is lost and
# none describes a change that rolled back. `payload` is the CloudEvent JSON, rendered once.
events = Table(
    "events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("type", String(96), nullable=False),
    Column("subject", String(64), nullable=True),  # the message or operation it is about
    Column("sequence", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Replay and pruning both go by account and time (migration 0012 dropped the index on
    # time alone: one index fewer to update per event).
    Index("ix_events_account_created", "account_sid", "created_at"),
)

event_sinks = Table(
    "event_sinks",
    metadata,
    Column("sid", String(34), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("description", String(256), nullable=False),
    Column("sink_type", String(16), nullable=False),
    Column("configuration", Text, nullable=False),
    Column("status", String(16), nullable=False),  # initialized | validating | active | failed
    # Signing secrets, sealed with the server key: a JSON list of {secret, expires_at}. More
    # than one while a rotation's overlap lasts.
    Column("secrets", Text, nullable=False),
    Column("test_event_id", String(64), nullable=True),
    # One worker delivers to a sink at a time: the lease, with its fencing token.
    Column("lease_token", BigInteger, nullable=False, default=0),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    # A failing sink is left alone until then (its own backoff), so it costs others nothing.
    Column("blocked_until", BigInteger, nullable=False, default=0),
    Column("last_success_at", BigInteger, nullable=True),
    Column("last_failure_at", BigInteger, nullable=True),
    Column("last_failure_reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_event_sinks_account_sid", "account_sid", "sid"),
)

event_subscriptions = Table(
    "event_subscriptions",
    metadata,
    Column("sid", String(34), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("sink_sid", String(34), nullable=False),
    Column("description", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_event_subscriptions_account_sid", "account_sid", "sid"),
    Index("ix_event_subscriptions_sink", "sink_sid"),
)

# The types a subscription selects; sink and account are copied here so the outbox finds
# the sinks of a batch's events with one index probe per account.
event_subscribed_types = Table(
    "event_subscribed_types",
    metadata,
    Column("subscription_sid", String(34), primary_key=True),
    Column("type", String(96), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("sink_sid", String(34), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_event_subscribed_types_account", "account_sid", "type"),
)

# What each sink still owes: one row per (event, sink). `next_attempt_at` is NULL once the
# event is delivered or given up, so the due index holds only the backlog.
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(64), nullable=False),
    Column("sink_sid", String(34), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_event_deliveries_event_sink", "event_id", "sink_sid", unique=True),
    Index(
        "ix_event_deliveries_due",
        "sink_sid",
        "next_attempt_at",
        sqlite_where=text("next_attempt_at IS NOT NULL"),
        postgresql_where=text("next_attempt_at IS NOT NULL"),
    ),
)

# Emails (issue 9) share the messages table: their ids start `comms_email_`, so dispatch,
# retries, receipts, cancel and Seek need nothing new. An operation says which API made it
# (MESSAGES or EMAILS), since both kinds of operation ids look alike (migration 0006).
operations.append_column(
    Column("kind", String(16), nullable=False, server_default=text("'MESSAGES'"))
)
Index("ix_operations_account_kind_id", operations.c.account_sid, operations.c.kind, operations.c.id)

# Idempotency keys (decision 11): a POST's first answer, kept 24 hours per account and key.
# `status` is NULL while the first request is still in flight (until `locked_until`).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_sid", String(34), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=True),
    Column("headers", Text, nullable=True),
    Column("body", Text, nullable=True),
    Column("locked_until", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_idempotency_keys_expires", "expires_at"),
)

# Rate limits shared by every API process (GCRA): the theoretical arrival time, in
# microseconds, of each account's limiter.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("account_sid", String(34), primary_key=True),
    Column("name", String(32), primary_key=True),
    Column("tat", BigInteger, nullable=False),
)

# Migration 0010: operation stats as counters, changed only by store/operation_status.apply
# from the transitions of the same transaction that moves the statuses they count (see
# docs/decisions.md). `n_unaddressable` counts the messages that failed at accept; the other
# `n_<status>` count the addressable messages in each status.
COUNTED_STATUSES = (
    "SCHEDULED", "QUEUED", "SENT", "DELIVERED", "READ", "UNDELIVERED", "FAILED", "CANCELED",
)  # fmt: skip
COUNTER_COLUMNS = (
    *(f"n_{s.lower()}" for s in COUNTED_STATUSES), "n_unaddressable", "n_attempts",
)  # fmt: skip
for _name in COUNTER_COLUMNS:
    operations.append_column(
        Column(_name, Integer, nullable=False, default=0, server_default=text("0"))
    )

# What /readyz writes on PostgreSQL to learn whether a write would commit (store/db.py).
readiness_probe = Table(
    "readiness_probe",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("checked_at", BigInteger, nullable=False),
)

# -- SMPP (migration 0010e) --------------------------------------------------------------------

# What each part of a long SMS got back: NULL until its own receipt, then DELIVERED or
# UNDELIVERED. The attempt's first part has a row too (primary_id = its own id), so a message
# is DELIVERED only once every row of its attempt is, and UNDELIVERED as soon as one is.
attempt_parts.append_column(Column("status", String(16), nullable=True))
Index("ix_attempt_parts_primary", attempt_parts.c.primary_id)

# Inbound messages already stored, by a key stable across deliveries of the same message
# (the route and a digest of what the deliver_sm carried): an SMSC delivers again what was
# never acknowledged, and a crash between the write and the acknowledgement must not store
# it twice. A key older than the route's repeat window no longer counts (the same text sent
# again later is a new message).
inbound_keys = Table(
    "inbound_keys",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("received_at", BigInteger, nullable=False),
    Index("ix_inbound_keys_received", "received_at"),
)

# -- Poison messages and route states (issue 10, issue 8) -------------------------------------

# Claims that found the previous lease lapsed, not released: its holder died or hung with the
# message in hand. Reset by any recorded outcome; past a few, the message is failed alone
# (dispatch/dispatcher.py `_isolate`) so it cannot take the worker down again.
messages.append_column(Column("stalled_claims", Integer, nullable=False, server_default=text("0")))

# What each worker last saw of each route it holds (dispatch/routes.py): any API process
# reads it for /readyz. `reported_at` is refreshed periodically, so a dead worker's rows age.
route_states = Table(
    "route_states",
    metadata,
    Column("worker_id", String(128), primary_key=True),
    Column("route", String(64), primary_key=True),
    Column("up", Boolean, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("since", BigInteger, nullable=False),
    Column("reported_at", BigInteger, nullable=False),
)

# -- Event templates (issue 11) -----------------------------------------------------------------

# The message events of a large accept are alike but for the event id, the message and its
# recipient: their body is stored once per send (and chunk) here, and each event row names it
# with an empty payload. The delivery fills it in (events/outbox.fill) from the event row and
# its message's recipient, which never changes. Pruned with the events of the same age.
event_templates = Table(
    "event_templates",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("text", Text, nullable=False),
    Column("channel", String(16), nullable=True),  # the `to` party's channel
    Column("created_at", BigInteger, nullable=False),
    # What the events of an implied template are (outbox.store): `count` events of this
    # account, type and sequence, ids the run from `first_event_id` (ids.ulid_run), each
    # about the message of the same place in the run from `first_subject`. `implied`: they
    # are not rows of `events` (yet); a replay writes them (outbox.realize).
    Column("account_sid", String(34), nullable=True),
    Column("type", String(96), nullable=True),
    Column("sequence", Integer, nullable=True),
    Column("first_event_id", String(64), nullable=True),
    Column("first_subject", String(64), nullable=True),
    Column("count", Integer, nullable=True),
    Column("implied", Boolean, nullable=False, default=False, server_default=text("false")),
    Index("ix_event_templates_created", "created_at"),
    Index(
        "ix_event_templates_implied",
        "account_sid",
        "created_at",
        sqlite_where=text("implied"),
        postgresql_where=text("implied"),
    ),
)
events.append_column(Column("template_id", String(64), nullable=True))
