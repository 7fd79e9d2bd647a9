"""Tampering with the stored ledger is refused by the database, and what gets through is named by verify_ledger.

To tamper, a test does what only the table owner or a superuser can: switch the append-only triggers
off (PostgreSQL: ALTER TABLE … DISABLE TRIGGER ALL; SQLite: drop them). Both are undone when the
test's transaction rolls back.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import TestCase
from rest_framework.test import APIClient

from provenance.appendonly import protect_statements, unprotect_statements
from provenance.ledger import merkle
from provenance.ledger.checkpoint import private_key_b64
from provenance.ledger.entry import event_sha256
from provenance.ledger_services import checkpoint_issue
from provenance.ledger_store import DbNodeStore, event_entry
from provenance.models import Checkpoint, CustodyEvent, LedgerHead, MerkleNode
from tests import factories as f
from tests.provenance.ledger.support import TEST_KEY

ALICE_GLN = "0700001000008"
EVENTS = "provenance_custodyevent"
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL roles and triggers")


@pytest.fixture(autouse=True)
def _signing_key(settings):
    settings.LEDGER_SIGNING_KEY = private_key_b64(TEST_KEY)


def capture(client, *events):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post("/epcis/capture", data=json.dumps(f.document(*events)), content_type="application/json")
    assert response.status_code == 202, response.content


@pytest.fixture
def ledger(db, alice):
    """Five entries (seq 0..4), signed at sizes 2 and 5."""
    for i in range(5):
        capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", f"T{i}")]))
        if i == 1:
            checkpoint_issue()
    checkpoint_issue()
    return alice


def sql(statement, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@contextmanager
def triggers_off(*tables):
    """What the owner of the tables (or a superuser) can always do, and why checkpoints are published."""
    vendor = connection.vendor
    if vendor == "postgresql":
        sql("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses while deferred FK checks are pending
    for table in tables:
        if vendor == "postgresql":
            sql(f'ALTER TABLE "{table}" DISABLE TRIGGER ALL')
        else:
            for statement in unprotect_statements(vendor, [table]):
                sql(statement)
    yield
    for table in tables:
        if vendor == "postgresql":
            sql(f'ALTER TABLE "{table}" ENABLE TRIGGER ALL')
        else:
            for statement in protect_statements(vendor, [table]):
                sql(statement)


def verify_fails() -> str:
    with pytest.raises(CommandError) as failure:
        call_command("verify_ledger", stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))  # noqa: SIM115
    return str(failure.value)


def test_an_untouched_ledger_verifies(ledger, capsys):
    call_command("verify_ledger")
    out = capsys.readouterr().out
    assert "Ledger OK: 5 entries, 5 rows" in out
    assert "2 checkpoints" in out


def test_a_changed_field_is_named_with_its_seq(ledger):
    with triggers_off(EVENTS):
        sql(f"UPDATE {EVENTS} SET event_hash = 'ni:///sha-256;00?ver=CBV2.0' WHERE seq = 3")
    assert "first problem at seq 3: changed" in verify_fails()


def test_a_changed_event_body_is_named_even_when_its_entry_is_intact(ledger):
    event = CustodyEvent.objects.get(seq=1)
    body = dict(event.body, bizStep="decommissioning")
    with triggers_off(EVENTS):
        CustodyEvent.objects.filter(seq=1).update(body=body)
    message = verify_fails()
    assert "first problem at seq 1: changed" in message
    assert "content was changed" in message


def test_a_deleted_row_is_named_as_removed(ledger):
    with triggers_off(EVENTS):
        sql(f"DELETE FROM {EVENTS} WHERE seq = 2")
    assert "first problem at seq 2: removed" in verify_fails()


def _rewrite_tree() -> None:
    """Recompute every node from the rows as they are now, the way a careful forger would."""
    MerkleNode.objects.all().delete()
    rows = list(CustodyEvent.objects.select_related("submitter").order_by("seq"))
    merkle.append_leaves(DbNodeStore(), 0, [merkle.leaf_hash(event_entry(row)) for row in rows])


def test_rows_removed_from_the_end_with_the_head_rewound_are_named_as_removed(ledger):
    with triggers_off(EVENTS, "provenance_merklenode"):
        sql(f"DELETE FROM {EVENTS} WHERE seq >= 3")
        _rewrite_tree()
        LedgerHead.objects.update(tree_size=3)
    assert "first problem at seq 3: removed" in verify_fails()


def _copy_row(seq_from: int, seq_to: int, event_id: str) -> None:
    columns = [f.column for f in CustodyEvent._meta.concrete_fields if f.column not in ("seq", "event_id")]
    listed = ", ".join(columns)
    sql(
        f"INSERT INTO {EVENTS} (seq, event_id, {listed}) SELECT %s, %s, {listed} FROM {EVENTS} WHERE seq = %s",
        [seq_to, event_id, seq_from],
    )


def test_a_row_inserted_beyond_the_tree_is_named_as_inserted(ledger):
    _copy_row(1, 5, "urn:uuid:00000000-0000-0000-0000-00000000beef")  # inserting needs no trigger to be off
    assert "first problem at seq 5: inserted" in verify_fails()


def test_a_row_inserted_in_the_middle_with_later_rows_renumbered_is_named_as_inserted(ledger):
    with triggers_off(EVENTS):
        for seq in (4, 3, 2):
            sql(f"UPDATE {EVENTS} SET seq = seq + 1 WHERE seq = %s", [seq])
        _copy_row(1, 2, "urn:uuid:00000000-0000-0000-0000-00000000cafe")
    assert "first problem at seq 2: inserted" in verify_fails()


@postgres_only
def test_a_duplicate_sequence_number_is_named_as_inserted(ledger):
    # On PostgreSQL the key is (seq, record_time): a second row with seq 2 fits in the table.
    columns = [f.column for f in CustodyEvent._meta.concrete_fields if f.column not in ("seq", "record_time")]
    listed = ", ".join(columns)
    sql(
        f"INSERT INTO {EVENTS} (seq, record_time, {listed}) "
        f"SELECT seq, record_time + interval '1 second', {listed} FROM {EVENTS} WHERE seq = 2"
    )
    assert "first problem at seq 2: inserted" in verify_fails()


def test_two_swapped_rows_are_named_as_reordered(ledger):
    with triggers_off(EVENTS):
        sql(f"UPDATE {EVENTS} SET seq = -1 WHERE seq = 1")
        sql(f"UPDATE {EVENTS} SET seq = 1 WHERE seq = 3")
        sql(f"UPDATE {EVENTS} SET seq = 3 WHERE seq = -1")
    message = verify_fails()
    assert "first problem at seq 1: reordered" in message
    assert "seq 1 and 3" in message


def test_a_changed_stored_leaf_is_told_apart_from_a_changed_row(ledger):
    with triggers_off("provenance_merklenode"):
        MerkleNode.objects.filter(level=0, index=3).update(hash=bytes(32))
    assert "first problem at seq 3: tree node changed" in verify_fails()


def test_rows_and_tree_rewritten_together_are_caught_by_the_signed_checkpoints(ledger):
    with triggers_off(EVENTS, "provenance_merklenode"):
        forged = {"type": "ObjectEvent", "forged": True}
        CustodyEvent.objects.filter(seq=3).update(body=forged, body_sha256=event_sha256(forged))
        _rewrite_tree()
    message = verify_fails()
    # Everything agrees with everything but the signature; the checkpoints bound the range (2..4).
    assert "first problem at seq 2: changed" in message
    assert "seq 2..4 no longer hash to the signed root" in message


def test_no_checkpoint_is_signed_over_a_rewritten_tree(ledger):
    with triggers_off(EVENTS, "provenance_merklenode"):
        sql(f"UPDATE {EVENTS} SET event_hash = 'ni:///sha-256;00?ver=CBV2.0' WHERE seq = 0")
        _rewrite_tree()
    with pytest.raises(CommandError, match="does not extend checkpoint"):
        call_command("checkpoint", "--force")


def test_a_trace_is_refused_rather_than_proven_against_a_rewritten_tree(ledger):
    with triggers_off(EVENTS, "provenance_merklenode"):
        sql(f"UPDATE {EVENTS} SET event_hash = 'ni:///sha-256;00?ver=CBV2.0' WHERE seq = 0")
        _rewrite_tree()
    capture(ledger.client, f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", "T9")], lot="NEW"))
    response = ledger.client.get(f"/api/lots/{f.gtin('0700001')}/NEW/trace")
    assert response.status_code == 503
    assert "integrity check" in response.json()["detail"]


@pytest.mark.parametrize("field", ["root_hash", "note", "tree_size", "key_id"])
def test_a_changed_checkpoint_is_detected(ledger, field):
    checkpoint = Checkpoint.objects.order_by("id").first()
    forged = {
        "root_hash": "00" * 32,
        "note": checkpoint.note.replace("\n2\n", "\n3\n"),
        "tree_size": 3,
        "key_id": "someone-else+00000000",
    }[field]
    with triggers_off("provenance_checkpoint"):
        Checkpoint.objects.filter(pk=checkpoint.pk).update(**{field: forged})
    message = verify_fails()
    assert "checkpoint changed" in message
    assert f"checkpoint {checkpoint.pk} (tree size" in message


@pytest.mark.parametrize(
    ("model", "change"),
    [
        (CustodyEvent, {"action": "DELETE"}),
        (MerkleNode, {"hash": bytes(32)}),
        (Checkpoint, {"root_hash": "00" * 32}),
    ],
)
def test_the_application_cannot_update_or_delete_ledger_rows(ledger, model, change):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        model.objects.update(**change)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        model.objects.all().delete()
    assert model.objects.exists()


@postgres_only
@pytest.mark.parametrize("table", [EVENTS, "provenance_merklenode", "provenance_checkpoint", "provenance_eventkey"])
def test_the_application_cannot_truncate_ledger_tables(ledger, table):
    sql("SET CONSTRAINTS ALL IMMEDIATE")  # else TRUNCATE stops at the deferred FK checks, not at the trigger
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql(f'TRUNCATE "{table}" CASCADE')


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_role_that_does_not_own_the_tables_can_neither_modify_rows_nor_use_the_teardown_way_through(alice):
    capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", "ROLE1")]))
    role = "provenance_app_test"
    sql(f"DROP ROLE IF EXISTS {role}")
    sql(f"CREATE ROLE {role} LOGIN")
    sql(f"GRANT SELECT, INSERT ON {EVENTS} TO {role}")
    settings_dict = connection.settings_dict
    app = psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        dbname=settings_dict["NAME"],
        user=role,
        autocommit=True,
    )
    denied = psycopg.errors.InsufficientPrivilege
    try:
        assert app.execute(f"SELECT count(*) FROM {EVENTS}").fetchone() == (1,)
        for statement in (
            f"UPDATE {EVENTS} SET action = 'DELETE'",
            f"DELETE FROM {EVENTS}",
            f"TRUNCATE {EVENTS}",
            f"ALTER TABLE {EVENTS} DISABLE TRIGGER ALL",
            "SET session_replication_role = replica",
        ):
            with pytest.raises(denied):
                app.execute(statement)
        # Even granted DELETE and TRUNCATE, the teardown setting does not open the way: only the owner's does.
        sql(f"GRANT DELETE, TRUNCATE ON {EVENTS} TO {role}")
        app.execute("SET provenance.test_teardown = 'on'")
        for statement in (f"DELETE FROM {EVENTS}", f"TRUNCATE {EVENTS}"):
            with pytest.raises(denied, match="append-only"):
                app.execute(statement)
        assert CustodyEvent.objects.count() == 1
    finally:
        app.close()
        sql(f"DROP OWNED BY {role}")
        sql(f"DROP ROLE {role}")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_captures_give_a_gap_free_sequence_and_a_valid_tree(operator):
    clients, documents_each, events_each = 6, 4, 5
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients)

    def partner(n: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {operator.key}")
        try:
            barrier.wait()
            for d in range(documents_each):
                events = [
                    f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", f"C{n}D{d}E{e}")]) for e in range(events_each)
                ]
                response = client.post(
                    "/epcis/capture", data=json.dumps(f.document(*events)), content_type="application/json"
                )
                assert response.status_code == 202, response.content
        except BaseException as exc:  # reported below; a thread's assertion would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=partner, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    total = clients * documents_each * events_each
    assert list(CustodyEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(range(total))
    assert LedgerHead.objects.get().tree_size == total
    checkpoint_issue()
    call_command("verify_ledger", stdout=open("/dev/null", "w"))  # noqa: SIM115
