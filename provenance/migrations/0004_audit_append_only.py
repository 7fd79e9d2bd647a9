"""The audit event tables are append-only, with the ledger's triggers; on PostgreSQL the database stamps
the role that made each change (pgh_db_user), so changes from a psql session are attributed too."""

from django.db import migrations

from provenance.appendonly import protect_statements, unprotect_statements

AUDIT_TABLES = [
    "provenance_organizationaudit",
    "provenance_companyprefixaudit",
    "provenance_locationaudit",
    "provenance_productaudit",
    "provenance_lotaudit",
    "provenance_partnerapikeyaudit",
    "provenance_useraudit",
    "provenance_groupaudit",
    "provenance_usergroupaudit",
    "provenance_userpermissionaudit",
    "provenance_grouppermissionaudit",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for table in AUDIT_TABLES:
            schema_editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN pgh_db_user SET DEFAULT session_user')
    for statement in protect_statements(vendor, AUDIT_TABLES):
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in unprotect_statements(vendor, AUDIT_TABLES):
        schema_editor.execute(statement, params=None)
    if vendor == "postgresql":
        for table in AUDIT_TABLES:
            schema_editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN pgh_db_user DROP DEFAULT')


class Migration(migrations.Migration):
    dependencies = [("provenance", "0003_audit_trail")]
    operations = [migrations.RunPython(forwards, backwards)]
