"""The studio's records in SQL: the audit trail, the usage ledger and their console.

Operational state stays in Kubernetes objects; what must outlive them (who did what,
what each job cost) is written here through SQLAlchemy 2 (async), with Alembic
migrations run at start-up. SQLite (aiosqlite) is the embedded default, PostgreSQL
(asyncpg) the production database.
"""
