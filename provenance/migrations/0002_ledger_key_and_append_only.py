"""The ledger's PostgreSQL key includes record_time (partitionable later); ledger tables append-only."""

from django.db import migrations

from provenance.appendonly import protect_statements, unprotect_statements

LEDGER_TABLES = [
    "provenance_custodyevent",
    "provenance_eventkey",
    "provenance_eventepc",
    "provenance_eventparty",
    "provenance_eventaccess",
    "provenance_capturedocument",
    "provenance_merklenode",
    "provenance_checkpoint",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE provenance_custodyevent DROP CONSTRAINT provenance_custodyevent_pkey, "
            "ADD CONSTRAINT provenance_custodyevent_pkey PRIMARY KEY (seq, record_time);"
        )
    for statement in protect_statements(vendor, LEDGER_TABLES):
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    for statement in unprotect_statements(schema_editor.connection.vendor, LEDGER_TABLES):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("provenance", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
