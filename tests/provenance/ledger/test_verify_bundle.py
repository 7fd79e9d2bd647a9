"""The offline bundle verifier: verify_bundle() and ``python -m provenance.ledger.verify`` end to end."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provenance.ledger.bundle import FORMAT
from provenance.ledger.checkpoint import key_record, public_key_b64, public_key_bytes
from provenance.ledger.verify import BundleError, verify_bundle

from .support import ORIGIN, OTHER_KEY, TEST_KEY, Ledger, build_ledger

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PUBLIC = public_key_bytes(TEST_KEY)


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return build_ledger(37)


def _event(bundle: dict, i: int) -> dict:
    return bundle["events"][i]


def test_a_genuine_bundle_verifies(ledger: Ledger) -> None:
    report = verify_bundle(ledger.bundle([0, 5, 36]), trusted_keys=[PUBLIC])
    assert report.ok, report.failures
    assert report.tree_size == 37
    assert report.origin == ORIGIN
    assert report.events_verified == [str(ledger.events[i]["eventID"]) for i in (0, 5, 36)]


def test_a_bundle_for_a_past_checkpoint_verifies(ledger: Ledger) -> None:
    report = verify_bundle(ledger.bundle([3, 19], tree_size=20), trusted_keys=[PUBLIC])
    assert report.ok, report.failures
    assert report.tree_size == 20


def test_without_a_pinned_key_it_uses_the_bundle_keys_and_says_so(ledger: Ledger) -> None:
    report = verify_bundle(ledger.bundle([1]))
    assert report.ok
    assert any("--key" in w for w in report.warnings)


def test_the_event_json_is_optional(ledger: Ledger) -> None:
    assert verify_bundle(ledger.bundle([2], with_events=False), trusted_keys=[PUBLIC]).ok


def test_a_consistency_proof_from_an_earlier_checkpoint_verifies(ledger: Ledger) -> None:
    report = verify_bundle(ledger.bundle([30], since=12), trusted_keys=[PUBLIC])
    assert report.ok, report.failures
    assert report.consistency_from == 12


def test_a_checkpoint_the_auditor_kept_is_checked_against_the_proof(ledger: Ledger) -> None:
    kept = ledger.checkpoint(12).to_dict()
    assert verify_bundle(ledger.bundle([30], since=12), trusted_keys=[PUBLIC], previous_checkpoint=kept).ok
    other_size = ledger.checkpoint(11).to_dict()
    report = verify_bundle(ledger.bundle([30], since=12), trusted_keys=[PUBLIC], previous_checkpoint=other_size)
    assert not report.ok
    assert report.failures[0].where == "consistency"
    report = verify_bundle(ledger.bundle([30]), trusted_keys=[PUBLIC], previous_checkpoint=kept)
    assert report.failures[0].reason == "the bundle has no consistency proof"


def test_a_rewritten_history_fails_consistency_with_the_old_checkpoint() -> None:
    honest = build_ledger(10)
    old = honest.checkpoint(6).to_dict()
    rewritten = Ledger()
    rewritten.append(10)
    rewritten.entries[3] = rewritten.entries[3].replace(b"submitter=0614141000012", b"submitter=0614141000029")
    # Rebuild the rewritten tree from its altered entries and sign it with the genuine key.
    from provenance.ledger import merkle

    rewritten.store = merkle.MemoryNodeStore()
    merkle.append_leaves(rewritten.store, 0, [merkle.leaf_hash(e) for e in rewritten.entries])
    report = verify_bundle(rewritten.bundle([8], since=6), trusted_keys=[PUBLIC], previous_checkpoint=old)
    assert not report.ok
    assert report.failures[0].where == "consistency"


# --- what must fail, and how it is named ---------------------------------------------------------


def _first_failure(bundle: dict) -> tuple[str, str]:
    report = verify_bundle(bundle, trusted_keys=[PUBLIC])
    assert not report.ok
    return report.failures[0].where, report.failures[0].reason


def test_it_names_the_event_whose_proof_has_a_flipped_bit(ledger: Ledger) -> None:
    bundle = ledger.bundle([4, 9])
    path = _event(bundle, 1)["audit_path"]
    path[2] = ("0" if path[2][0] != "0" else "1") + path[2][1:]
    where, reason = _first_failure(bundle)
    assert where == f"event {ledger.events[9]['eventID']}"
    assert "inclusion proof" in reason


def test_it_rejects_an_entry_that_does_not_contain_the_event_id(ledger: Ledger) -> None:
    bundle = ledger.bundle([4, 9])
    _event(bundle, 0)["event_id"] = str(ledger.events[5]["eventID"])
    where, reason = _first_failure(bundle)
    assert where == f"event {ledger.events[5]['eventID']}"
    assert "name eventID" in reason


def test_it_rejects_an_entry_whose_seq_is_not_its_leaf_index(ledger: Ledger) -> None:
    bundle = ledger.bundle([4])
    _event(bundle, 0)["leaf_index"] = 5
    assert "seq 4 differs" in _first_failure(bundle)[1]


def test_it_rejects_altered_entry_bytes(ledger: Ledger) -> None:
    bundle = ledger.bundle([4])
    entry = base64.b64decode(_event(bundle, 0)["entry"]).replace(b"submitter=0614141000012", b"submitter=0614141000029")
    _event(bundle, 0)["entry"] = base64.b64encode(entry).decode()
    _event(bundle, 0).pop("leaf_hash")
    assert "inclusion proof" in _first_failure(bundle)[1]


def test_it_rejects_an_included_event_whose_content_was_changed(ledger: Ledger) -> None:
    bundle = ledger.bundle([4])
    _event(bundle, 0)["event"]["bizStep"] = "receiving"
    assert "received_sha256" in _first_failure(bundle)[1]


def test_it_rejects_a_wrong_leaf_hash_field(ledger: Ledger) -> None:
    bundle = ledger.bundle([4])
    _event(bundle, 0)["leaf_hash"] = "00" * 32
    assert "leaf_hash" in _first_failure(bundle)[1]


@pytest.mark.parametrize("field", ["tree_size", "root_hash", "note", "signature"])
def test_it_rejects_a_tampered_checkpoint(ledger: Ledger, field: str) -> None:
    bundle = ledger.bundle([4])
    cp = bundle["checkpoint"]
    if field == "tree_size":
        cp["tree_size"] += 1
    elif field == "root_hash":
        cp["root_hash"] = "ab" * 32
    elif field == "note":
        cp["note"] = cp["note"].replace("\n37\n", "\n38\n")
    else:
        cp["signature"] = base64.b64encode(b"\x01" * 64).decode()
    assert _first_failure(bundle)[0] == "checkpoint"


def test_a_bundle_signed_by_another_key_fails_against_the_pinned_key(ledger: Ledger) -> None:
    forger = Ledger(key=OTHER_KEY)
    forger.append(5)
    bundle = forger.bundle([1])
    assert verify_bundle(bundle).ok  # self-consistent with the key it ships...
    assert _first_failure(bundle)[0] == "checkpoint"  # ...but not with the log's key


def test_it_rejects_an_event_listed_twice(ledger: Ledger) -> None:
    assert "listed twice" in _first_failure(ledger.bundle([4, 4]))[1]


@pytest.mark.parametrize(
    "bundle",
    [[], {"format": "provenance-bundle/v0"}, {"format": FORMAT}, {"format": FORMAT, "checkpoint": {}, "events": {}}],
)
def test_an_unreadable_bundle_raises(bundle: object) -> None:
    with pytest.raises(BundleError):
        verify_bundle(bundle)


# --- the command line ------------------------------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # Runs from the project root with no Django settings: the verifier must need neither.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, "-m", "provenance.ledger.verify", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _write(tmp_path: Path, bundle: object, name: str = "bundle.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(bundle))
    return str(path)


def test_the_cli_exits_0_and_prints_a_summary_for_a_genuine_bundle(ledger: Ledger, tmp_path: Path) -> None:
    result = _run(_write(tmp_path, ledger.bundle([0, 36], since=20)), "--key", public_key_b64(TEST_KEY))
    assert result.returncode == 0, result.stderr
    assert f"{FORMAT}: OK" in result.stdout
    assert "tree size 37" in result.stdout
    assert "2 of 2 proven included" in result.stdout
    assert "size 20 is a prefix" in result.stdout


def test_the_cli_exits_1_naming_the_first_failing_event(ledger: Ledger, tmp_path: Path) -> None:
    bundle = ledger.bundle([3, 7, 11])
    bad = copy.deepcopy(bundle)
    _event(bad, 1)["audit_path"].reverse()
    _event(bad, 2)["audit_path"].pop()
    result = _run(_write(tmp_path, bad), "--key", public_key_b64(TEST_KEY))
    assert result.returncode == 1
    assert f"FAILED: event {ledger.events[7]['eventID']} (leaf 7): inclusion proof failed" in result.stderr
    assert "1 more failure" in result.stderr


def test_the_cli_takes_the_pinned_key_from_a_file_and_rejects_a_forgery(tmp_path: Path) -> None:
    forger = Ledger(key=OTHER_KEY)
    forger.append(3)
    key_file = tmp_path / "log.pub"
    key_file.write_text(public_key_b64(TEST_KEY))
    result = _run(_write(tmp_path, forger.bundle([0])), "--key", str(key_file))
    assert result.returncode == 1
    assert "FAILED: checkpoint" in result.stderr


def test_the_cli_checks_consistency_with_a_checkpoint_the_auditor_kept(ledger: Ledger, tmp_path: Path) -> None:
    kept = _write(tmp_path, ledger.checkpoint(20).to_dict(), "kept.json")
    ok = _run(_write(tmp_path, ledger.bundle([0], since=20)), "--since", kept)
    assert ok.returncode == 0, ok.stderr
    missing = _run(_write(tmp_path, ledger.bundle([0])), "--since", kept)
    assert missing.returncode == 1
    assert "FAILED: consistency" in missing.stderr


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"format": "something-else"})])
def test_the_cli_exits_2_on_an_unreadable_bundle(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(content)
    result = _run(str(path))
    assert result.returncode == 2
    assert "unreadable bundle" in result.stderr


def test_the_cli_exits_2_when_the_file_is_missing(tmp_path: Path) -> None:
    assert _run(str(tmp_path / "nope.json")).returncode == 2


def test_the_verifier_does_not_import_django(ledger: Ledger, tmp_path: Path) -> None:
    code = (
        "import sys, runpy; sys.argv=['verify', sys.argv[1]]\n"
        "try:\n    runpy.run_module('provenance.ledger.verify', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, _write(tmp_path, ledger.bundle([1]))],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_keys_of_unknown_algorithms_are_ignored(ledger: Ledger) -> None:
    bundle = ledger.bundle([1])
    bundle["keys"].insert(0, {"key_id": bundle["checkpoint"]["key_id"], "algorithm": "ML-DSA-44", "public_key": "AA=="})
    assert verify_bundle(bundle).ok
    assert key_record(ORIGIN, TEST_KEY) in bundle["keys"]


def test_an_entry_built_with_a_format_string_matches_the_exported_bytes(ledger: Ledger) -> None:
    # Guards the documented recipe: the same bytes built with a format string, not with encode_entry.
    event = ledger.events[6]
    entry = base64.b64decode(ledger.bundle([6])["events"][0]["entry"])
    lines = entry.decode().split("\n")
    rebuilt = (
        "provenance-ledger-entry/v1\n"
        f"seq=6\nevent_id={event['eventID']}\n{lines[3]}\n{lines[4]}\nsubmitter=0614141000012\n{lines[6]}\n"
    ).encode()
    assert rebuilt == entry
