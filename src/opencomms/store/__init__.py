"""Persistence: tables, migrations, repositories and the queue's claim queries."""
