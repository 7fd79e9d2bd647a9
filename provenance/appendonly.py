"""Append-only protection of the ledger and audit tables, in the database itself.

PostgreSQL: row triggers refuse UPDATE and DELETE, a statement trigger refuses TRUNCATE. The only
way through is for the test harness's teardown: a session that sets provenance.test_teardown=on
*and* is a member of the table owner's role (the application role is not; docs/operations.md).
The owner or a superuser can still disable triggers: that is why checkpoints are signed and
published outside the database.

SQLite (the embedded default): equivalent triggers; the teardown way through is a row in
provenance_maintenance, which only matters where there are no roles anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION provenance_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE')
       AND NULLIF(current_setting('provenance.test_teardown', true), '') = 'on'
       AND pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        IF TG_LEVEL = 'ROW' THEN RETURN OLD; END IF;
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'provenance: % on % is refused: this table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Corrections are new events (errorDeclaration), never edits.';
END;
$$;
"""


def pg_protect(table: str) -> list[str]:
    return [
        f'DROP TRIGGER IF EXISTS {table}_append_only ON "{table}";',
        f'DROP TRIGGER IF EXISTS {table}_no_truncate ON "{table}";',
        f'CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON "{table}" '
        "FOR EACH ROW EXECUTE FUNCTION provenance_append_only();",
        f'CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON "{table}" '
        "FOR EACH STATEMENT EXECUTE FUNCTION provenance_append_only();",
    ]


SQLITE_MAINTENANCE = "CREATE TABLE IF NOT EXISTS provenance_maintenance (allow_delete INTEGER NOT NULL);"


def sqlite_protect(table: str) -> list[str]:
    # Table names come from migrations, never from input.
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_update;",
        f"DROP TRIGGER IF EXISTS {table}_no_delete;",
        f'CREATE TRIGGER {table}_no_update BEFORE UPDATE ON "{table}" BEGIN '
        f"SELECT RAISE(ABORT, 'provenance: UPDATE on {table} is refused: this table is append-only'); END;",
        f'CREATE TRIGGER {table}_no_delete BEFORE DELETE ON "{table}" '  # noqa: S608 - names from migrations
        "WHEN NOT EXISTS (SELECT 1 FROM provenance_maintenance WHERE allow_delete = 1) BEGIN "
        f"SELECT RAISE(ABORT, 'provenance: DELETE on {table} is refused: this table is append-only'); END;",
    ]


def protect_statements(vendor: str, tables: Iterable[str]) -> list[str]:
    statements: list[str] = []
    if vendor == "postgresql":
        statements.append(PG_FUNCTION)
        for table in tables:
            statements += pg_protect(table)
    elif vendor == "sqlite":
        statements.append(SQLITE_MAINTENANCE)
        for table in tables:
            statements += sqlite_protect(table)
    return statements


def unprotect_statements(vendor: str, tables: Iterable[str]) -> list[str]:
    statements: list[str] = []
    for table in tables:
        if vendor == "postgresql":
            statements += [
                f'DROP TRIGGER IF EXISTS {table}_append_only ON "{table}";',
                f'DROP TRIGGER IF EXISTS {table}_no_truncate ON "{table}";',
            ]
        elif vendor == "sqlite":
            statements += [f"DROP TRIGGER IF EXISTS {table}_no_update;", f"DROP TRIGGER IF EXISTS {table}_no_delete;"]
    return statements
