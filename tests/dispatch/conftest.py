from tests.dispatch.databases import db, db_url, pg_db, queue_pg_url

__all__ = ["db", "db_url", "pg_db", "queue_pg_url"]
