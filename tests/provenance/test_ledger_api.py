"""The verifiable ledger through HTTP and its commands: checkpoints, keys, proofs, traces, rotation."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase

from provenance.ledger import merkle
from provenance.ledger.bundle import bundle_event, make_bundle
from provenance.ledger.checkpoint import private_key_b64, public_key_b64, verify_checkpoint
from provenance.ledger.entry import decode_entry
from provenance.ledger_services import checkpoint_issue
from provenance.models import Checkpoint, SigningKey
from tests import factories as f
from tests.provenance.ledger.support import OTHER_KEY, TEST_KEY

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ALICE_GLN = "0700001000008"
BOB_GLN = "0700002000007"
GTIN = f.gtin("0700001")


@pytest.fixture(autouse=True)
def _signing_key(settings):
    settings.LEDGER_SIGNING_KEY = private_key_b64(TEST_KEY)
    settings.LEDGER_ORIGIN = "ledger.test/dscsa"


def capture(client, *events):
    """Capture through HTTP; derivation (lots, packages) runs after the commit, as in production."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post("/epcis/capture", data=json.dumps(f.document(*events)), content_type="application/json")
    assert response.status_code == 202, response.content
    return response


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


@pytest.fixture
def chain(alice, bob):
    """Alice commissions two packs of lot L1, ships one to Bob, Bob receives it."""
    a1, a2 = f.sgtin_urn("0700001", "A1"), f.sgtin_urn("0700001", "A2")
    ids = [f.new_event_id() for _ in range(3)]
    capture(alice.client, f.commissioning(ALICE_GLN, [a1, a2], event_id=ids[0]))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, [a1], event_id=ids[1]))
    capture(bob.client, f.receiving(ALICE_GLN, BOB_GLN, [a1], event_id=ids[2]))
    return ids


def run_verifier(bundle: dict, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    return subprocess.run(
        [sys.executable, "-m", "provenance.ledger.verify", str(path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_partner_verifies_an_event_its_inclusion_proof_and_the_latest_checkpoint(chain, bob, tmp_path):
    call_command("checkpoint", stdout=open(os.devnull, "w"))  # noqa: SIM115
    event_id = chain[2]
    event = ok(bob.client.get(f"/epcis/events/{quote(event_id, safe='')}"))
    checkpoint = ok(bob.client.get("/api/ledger/checkpoints/latest"))
    proof = ok(
        bob.client.get("/api/ledger/proofs/inclusion", {"event_id": event_id, "tree_size": checkpoint["tree_size"]})
    )
    keys = ok(bob.client.get("/api/ledger/keys"))

    # With nothing but the wire format and RFC 9162 / Ed25519:
    public_key = base64.b64decode(keys[0]["public_key"])
    verified = verify_checkpoint(checkpoint, public_key)
    entry = base64.b64decode(proof["entry"])
    assert f"\nevent_id={event_id}\n".encode() in entry
    assert decode_entry(entry).seq == proof["leaf_index"] == 2
    merkle.verify_inclusion(
        merkle.leaf_hash(entry),
        proof["leaf_index"],
        proof["tree_size"],
        [bytes.fromhex(h) for h in proof["audit_path"]],
        verified.root_hash,
    )
    assert event["eventID"] == event_id

    # And with the standalone verifier, pinning the key as an auditor would.
    bundle = make_bundle(
        checkpoint=checkpoint,
        keys=keys,
        events=[
            bundle_event(
                event_id=event_id,
                leaf_index=proof["leaf_index"],
                entry=entry,
                audit_path=[bytes.fromhex(h) for h in proof["audit_path"]],
            )
        ],
    )
    result = run_verifier(bundle, tmp_path, "--key", public_key_b64(TEST_KEY))
    assert result.returncode == 0, result.stderr
    assert "1 of 1 proven included" in result.stdout


def test_a_lot_trace_is_an_epcis_document_with_a_bundle_the_standalone_verifier_accepts(chain, bob, tmp_path):
    assert Checkpoint.objects.count() == 0
    trace = ok(bob.client.get(f"/api/lots/{GTIN}/L1/trace"))
    document, bundle = trace["epcisDocument"], trace["bundle"]
    assert document["type"] == "EPCISDocument"
    listed = [e["eventID"] for e in document["epcisBody"]["eventList"]]
    assert listed == chain  # Bob had custody of A1, so he reads its whole chain
    assert [e["event_id"] for e in bundle["events"]] == chain
    assert Checkpoint.objects.count() == 1  # issued because none covered the events yet
    assert bundle["checkpoint"]["tree_size"] == 3

    result = run_verifier(bundle, tmp_path, "--key", public_key_b64(TEST_KEY))
    assert result.returncode == 0, result.stderr
    assert "3 of 3 proven included" in result.stdout


def test_a_trace_bundle_whose_event_was_altered_fails_the_standalone_verifier(chain, alice, tmp_path):
    bundle = ok(alice.client.get(f"/api/lots/{GTIN}/L1/trace"))["bundle"]
    bundle["events"][1]["event"]["bizStep"] = "receiving"
    result = run_verifier(bundle, tmp_path, "--key", public_key_b64(TEST_KEY))
    assert result.returncode == 1
    assert f"event {chain[1]} (leaf 1)" in result.stderr


def test_a_serial_trace_follows_the_package_into_the_case_that_carried_it(alice, bob, tmp_path):
    packs = [f.sgtin_urn("0700001", f"S{i}") for i in range(2)]
    case = f.sscc_urn("0700001", "0000000011")
    capture(alice.client, f.commissioning(ALICE_GLN, packs))
    capture(
        alice.client,
        {
            "type": "AggregationEvent",
            "eventTime": "2026-11-01T09:00:00.000-05:00",
            "eventTimeZoneOffset": "-05:00",
            "parentID": case,
            "childEPCs": packs,
            "action": "ADD",
            "bizStep": "packing",
            "readPoint": {"id": f.sgln_urn(ALICE_GLN)},
        },
    )
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, [case]))
    capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", "OTHER")]))

    trace = ok(bob.client.get(f"/api/serials/{GTIN}/S1/trace"))
    steps = [e["bizStep"] for e in trace["epcisDocument"]["epcisBody"]["eventList"]]
    assert steps == ["commissioning", "packing", "shipping"]
    assert run_verifier(trace["bundle"], tmp_path).returncode == 0


def test_a_trace_of_nothing_visible_or_a_bad_gtin_is_a_problem(chain, bob):
    unknown = bob.client.get(f"/api/lots/{GTIN}/NOPE/trace")
    assert unknown.status_code == 404
    assert unknown["Content-Type"] == "application/problem+json"
    bad = bob.client.get("/api/lots/07000010000010/L1/trace")
    assert bad.status_code == 400
    assert "check digit" in bad.json()["detail"]


def test_consistency_proofs_between_two_checkpoints_verify(chain, alice, operator, tmp_path):
    first = checkpoint_issue()
    for i in range(5):
        capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", f"M{i}")]))
    second = checkpoint_issue()
    assert (first.tree_size, second.tree_size) == (3, 8)

    proof = ok(operator.client.get("/api/ledger/proofs/consistency", {"first": 3, "second": 8}))
    assert (proof["first"], proof["second"]) == (3, 8)
    merkle.verify_consistency(
        3,
        8,
        bytes.fromhex(first.root_hash),
        bytes.fromhex(second.root_hash),
        [bytes.fromhex(h) for h in proof["consistency_path"]],
    )

    # A trace can carry the same proof; an auditor checks it against the checkpoint they kept.
    kept = ok(alice.client.get("/api/ledger/checkpoints", {"tree_size": 3}))["results"][0]
    (tmp_path / "kept.json").write_text(json.dumps(kept))
    bundle = ok(alice.client.get(f"/api/lots/{GTIN}/L1/trace", {"since": 3}))["bundle"]
    assert bundle["consistency"]["first_checkpoint"]["tree_size"] == 3
    result = run_verifier(bundle, tmp_path, "--since", str(tmp_path / "kept.json"))
    assert result.returncode == 0, result.stderr
    assert "the tree at size 3 is a prefix of this one" in result.stdout


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"first": 0, "second": 3}, 400, "at least 1"),
        ({"first": 3, "second": 2}, 400, "must not be smaller"),
        ({"first": 1, "second": 4}, 400, "larger than the ledger"),
        ({"first": 1}, 400, "second is required"),
        ({"first": "x", "second": 2}, 400, "whole number"),
    ],
)
def test_consistency_proof_parameters_are_checked(chain, alice, params, status, says):
    response = alice.client.get("/api/ledger/proofs/consistency", params)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert says in response.json()["detail"]


def test_key_rotation_keeps_old_checkpoints_verifiable(chain, alice, settings):
    old = checkpoint_issue()
    settings.LEDGER_SIGNING_KEY = private_key_b64(OTHER_KEY)
    rotated = checkpoint_issue()  # a new key signs at once, even before the ledger grows
    capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", "R1")]))
    new = checkpoint_issue()
    assert old.key_id != new.key_id == rotated.key_id

    keys = {k["key_id"]: base64.b64decode(k["public_key"]) for k in ok(alice.client.get("/api/ledger/keys"))}
    assert set(keys) == {old.key_id, new.key_id}
    listed = ok(alice.client.get("/api/ledger/checkpoints"))["results"]
    assert [c["tree_size"] for c in listed] == [4, 3, 3]
    for checkpoint in listed:
        verify_checkpoint(checkpoint, keys[checkpoint["key_id"]])
    assert SigningKey.objects.get(key_id=old.key_id).retired_at is not None
    assert SigningKey.objects.get(key_id=new.key_id).retired_at is None
    call_command("verify_ledger", stdout=open(os.devnull, "w"))  # noqa: SIM115


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 200), ("bob", 404), ("operator", 200), ("staff_client", 200), ("anonymous", 401)]
)
def test_an_inclusion_proof_is_served_only_for_an_event_the_caller_may_read(request, alice, bob, who, status):
    event_id = f.new_event_id()
    capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", "PRIVATE")], event_id=event_id))
    checkpoint_issue()
    client = request.getfixturevalue(who)
    client = getattr(client, "client", client)
    response = client.get("/api/ledger/proofs/inclusion", {"event_id": event_id})
    assert response.status_code == status, response.content
    if status == 200:
        assert response.json()["tree_size"] == 1
    else:
        assert response["Content-Type"] == "application/problem+json"


def test_a_trace_shows_a_partner_only_what_it_may_read(alice, bob):
    capture(alice.client, f.commissioning(ALICE_GLN, [f.sgtin_urn("0700001", "P1")], lot="PRIV"))
    assert bob.client.get(f"/api/lots/{GTIN}/PRIV/trace").status_code == 404
    assert ok(alice.client.get(f"/api/lots/{GTIN}/PRIV/trace"))["bundle"]["events"]


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"tree_size": 2}, 400, "at least 3"),
        ({"tree_size": 0}, 400, "at least 3"),
        ({"tree_size": 4}, 400, "larger than the ledger"),
        ({"tree_size": "-1"}, 400, "whole number"),
        ({}, 404, "no signed checkpoint covers it yet"),
    ],
)
def test_an_inclusion_proof_needs_a_tree_that_holds_the_event(chain, alice, params, status, says):
    response = alice.client.get("/api/ledger/proofs/inclusion", {"event_id": chain[2], **params})
    assert response.status_code == status, response.content
    assert says in response.json()["detail"]


def test_an_inclusion_proof_defaults_to_the_latest_checkpoint_and_any_covering_size_works(chain, alice):
    checkpoint_issue()
    proof = ok(alice.client.get("/api/ledger/proofs/inclusion", {"event_id": chain[0]}))
    assert (proof["leaf_index"], proof["tree_size"]) == (0, 3)
    smaller = ok(alice.client.get("/api/ledger/proofs/inclusion", {"event_id": chain[0], "tree_size": 1}))
    assert smaller["audit_path"] == []
    assert alice.client.get("/api/ledger/proofs/inclusion").status_code == 400
    assert alice.client.get("/api/ledger/proofs/inclusion", {"event_id": "urn:uuid:nope"}).status_code == 404


def test_checkpoints_are_listed_newest_first_filtered_and_paginated(chain, alice):
    for _ in range(3):
        checkpoint_issue(force=True)
    page = ok(alice.client.get("/api/ledger/checkpoints", {"limit": 2}))
    assert len(page["results"]) == 2
    rest = ok(alice.client.get(page["next"]))
    assert len(rest["results"]) == 1
    assert rest["next"] is None
    ids = [c["timestamp"] for c in page["results"] + rest["results"]]
    assert ids == sorted(ids, reverse=True)
    assert ok(alice.client.get("/api/ledger/checkpoints", {"min_tree_size": 4}))["results"] == []
    assert len(ok(alice.client.get("/api/ledger/checkpoints", {"tree_size": 3}))["results"]) == 3
    later = ok(alice.client.get("/api/ledger/checkpoints", {"since": "2999-01-01T00:00:00Z"}))
    assert later["results"] == []
    assert alice.client.get("/api/ledger/checkpoints", {"since": "yesterday"}).status_code == 400


def test_the_latest_checkpoint_is_in_the_wire_format(chain, alice, anonymous):
    assert alice.client.get("/api/ledger/checkpoints/latest").status_code == 404
    issued = checkpoint_issue()
    latest = ok(alice.client.get("/api/ledger/checkpoints/latest"))
    assert set(latest) == {"tree_size", "root_hash", "timestamp", "key_id", "signature", "note"}
    assert latest["note"] == f"ledger.test/dscsa\n3\n{base64.b64encode(bytes.fromhex(issued.root_hash)).decode()}\n"
    assert latest["timestamp"].endswith("Z")
    assert len(latest["timestamp"]) == 27
    assert latest["key_id"].startswith("ledger.test/dscsa+")
    assert ok(alice.client.get("/api/ledger/keys")) == [
        {"key_id": latest["key_id"], "algorithm": "Ed25519", "public_key": public_key_b64(TEST_KEY)}
    ]
    assert anonymous.get("/api/ledger/checkpoints/latest").status_code == 401


def test_the_checkpoint_command_signs_only_when_the_ledger_grew(chain, capsys):
    call_command("checkpoint")
    printed = json.loads(capsys.readouterr().out)
    assert printed["tree_size"] == 3
    call_command("checkpoint")
    assert "Nothing new" in capsys.readouterr().err
    assert Checkpoint.objects.count() == 1
    call_command("checkpoint", "--force")
    assert Checkpoint.objects.count() == 2


def test_the_periodic_task_signs_what_is_new_and_expires_with_its_interval(chain):
    from provenance.ledger_tasks import beat_schedule, checkpoint_periodic

    assert checkpoint_periodic.delay().get() == 3
    assert checkpoint_periodic.delay().get() is None
    entry = beat_schedule({"checkpoint": 30})["ledger-checkpoint"]
    assert entry == {"task": "provenance.tasks.checkpoint_periodic", "schedule": 30.0, "options": {"expires": 30.0}}


def test_without_a_key_development_signs_with_a_generated_key_kept_private(chain, settings, tmp_path, caplog):
    settings.LEDGER_SIGNING_KEY = ""
    settings.BASE_DIR = tmp_path
    first = checkpoint_issue()
    key_file = tmp_path / "data" / "ledger-signing-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "LEDGER_SIGNING_KEY is not set" in caplog.text
    second = checkpoint_issue(force=True)
    assert first.key_id == second.key_id  # generated once, then reused


def test_production_refuses_to_sign_without_a_configured_key(chain, settings):
    settings.LEDGER_SIGNING_KEY = ""
    settings.DJANGO_ENV = "production"
    with pytest.raises(CommandError, match="LEDGER_SIGNING_KEY must be set"):
        call_command("checkpoint")
    settings.LEDGER_SIGNING_KEY = "not a key"
    with pytest.raises(CommandError, match="could not be loaded"):
        call_command("checkpoint")
    assert Checkpoint.objects.count() == 0


def test_the_ledger_endpoints_are_in_the_schema_without_warnings():
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    from provenance.urls import api_urlpatterns

    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=[path("api/", include(api_urlpatterns))]).get_schema(request=None, public=True)
    problems = list(GENERATOR_STATS._warn_cache) + list(GENERATOR_STATS._error_cache)
    assert problems == []
    assert {
        "/api/ledger/checkpoints/latest",
        "/api/ledger/keys",
        "/api/ledger/proofs/inclusion",
        "/api/ledger/proofs/consistency",
        "/api/lots/{gtin}/{lot}/trace",
    } <= set(schema["paths"])
