"""The model registry's audit trail, reviewers' flag decisions and the audit event tables are append-only,
like the ledger; on PostgreSQL the database stamps the role that made each change (pgh_db_user)."""

from django.db import migrations

from provenance.appendonly import protect_statements, unprotect_statements

TABLES = ["anomaly_modelaudit", "anomaly_flagdecision", "anomaly_modelversionauditevent", "anomaly_flagauditevent"]
EVENT_TABLES = ["anomaly_modelversionauditevent", "anomaly_flagauditevent"]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for table in EVENT_TABLES:
            schema_editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN pgh_db_user SET DEFAULT session_user')
    for statement in protect_statements(vendor, TABLES):
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in unprotect_statements(vendor, TABLES):
        schema_editor.execute(statement, params=None)
    if vendor == "postgresql":
        for table in EVENT_TABLES:
            schema_editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN pgh_db_user DROP DEFAULT')


class Migration(migrations.Migration):
    dependencies = [("anomaly", "0001_initial"), ("provenance", "0004_audit_append_only")]
    operations = [migrations.RunPython(forwards, backwards)]
