"""Checkpoints: C2SP tlog-checkpoint notes, Ed25519 signatures, key IDs and key loading."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provenance.ledger import merkle
from provenance.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    KeyFormatError,
    generate_key,
    key_id,
    key_record,
    load_signing_key,
    open_signed_note,
    parse_note,
    private_key_b64,
    public_key_b64,
    public_key_bytes,
    sign_checkpoint,
    sign_note,
    verifier_key,
    verify_checkpoint,
    verify_signed_note,
)

from .support import FIXTURES, ORIGIN, OTHER_KEY, T0, TEST_KEY

GO = json.loads((FIXTURES / "go-sumdb-note" / "peter-neumann.json").read_text(encoding="utf-8"))
ROOT = merkle.root_from_leaf_hashes([merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b"), merkle.leaf_hash(b"c")])
PUBLIC = public_key_bytes(TEST_KEY)


def _signed() -> Checkpoint:
    return sign_checkpoint(ORIGIN, 3, ROOT, TEST_KEY, timestamp=T0)


def test_the_note_is_exactly_origin_size_and_base64_root() -> None:
    cp = _signed()
    assert cp.note == f"{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}\n"
    assert parse_note(cp.note) == (ORIGIN, 3, ROOT)


def test_the_json_form_has_exactly_the_documented_fields() -> None:
    data = _signed().to_dict()
    assert set(data) == {"tree_size", "root_hash", "timestamp", "key_id", "signature", "note"}
    assert data["tree_size"] == 3
    assert data["root_hash"] == ROOT.hex()
    assert data["timestamp"] == "2026-03-14T09:00:00.000000Z"
    assert len(base64.b64decode(str(data["signature"]))) == 64
    assert json.loads(json.dumps(data)) == data


def test_the_signature_is_ed25519_over_the_utf8_note() -> None:
    cp = _signed()
    TEST_KEY.public_key().verify(base64.b64decode(cp.signature), cp.note.encode("utf-8"))


def test_a_signed_checkpoint_verifies_with_its_public_key() -> None:
    verified = verify_checkpoint(_signed().to_dict(), PUBLIC)
    assert (verified.origin, verified.tree_size, verified.root_hash, verified.key_name) == (ORIGIN, 3, ROOT, ORIGIN)
    assert verified.timestamp == datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


def test_the_key_name_defaults_to_the_origin_and_travels_in_the_key_id() -> None:
    cp = _signed()
    assert cp.key_id == key_id(ORIGIN, TEST_KEY)
    assert cp.key_id.startswith(ORIGIN + "+")
    other = sign_checkpoint(ORIGIN, 3, ROOT, TEST_KEY, "witness.example/k1")
    assert other.key_name == "witness.example/k1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tree_size", 4),
        ("tree_size", True),
        ("tree_size", "3"),
        ("root_hash", "00" * 32),
        ("root_hash", ROOT.hex().upper()),
        ("note", f"{ORIGIN}\n4\n{base64.b64encode(ROOT).decode()}\n"),
        ("note", f"{ORIGIN}x\n3\n{base64.b64encode(ROOT).decode()}\n"),
        ("note", f"{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}"),
        ("signature", base64.b64encode(b"\x00" * 64).decode()),
        ("signature", "not base64!"),
        ("key_id", f"{ORIGIN}+00000000"),
        ("key_id", "someone.else/log+" + key_id(ORIGIN, TEST_KEY).rsplit("+", 1)[1]),
        ("key_id", ORIGIN),
        ("timestamp", "yesterday"),
        ("timestamp", "2026-03-14T09:00:00"),
    ],
)
def test_it_rejects_a_tampered_checkpoint(field: str, value: object) -> None:
    data = {**_signed().to_dict(), field: value}
    with pytest.raises(CheckpointError):
        verify_checkpoint(data, PUBLIC)


def test_it_rejects_a_signature_with_a_flipped_bit() -> None:
    data = _signed().to_dict()
    sig = bytearray(base64.b64decode(str(data["signature"])))
    sig[10] ^= 0x01
    data["signature"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(data, PUBLIC)


def test_it_rejects_a_checkpoint_signed_by_another_key() -> None:
    forged = sign_checkpoint(ORIGIN, 3, ROOT, OTHER_KEY, timestamp=T0).to_dict()
    with pytest.raises(CheckpointError):
        verify_checkpoint(forged, PUBLIC)
    # Even when the forger copies the genuine key_id, the signature itself fails.
    forged["key_id"] = _signed().key_id
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(forged, PUBLIC)


def test_a_note_may_carry_extension_lines_but_not_blank_or_malformed_ones() -> None:
    b64 = base64.b64encode(ROOT).decode()
    assert parse_note(f"{ORIGIN}\n3\n{b64}\nextension\n") == (ORIGIN, 3, ROOT)
    for bad in [f"{ORIGIN}\n03\n{b64}\n", f"\n3\n{b64}\n", f"{ORIGIN}\n3\n{b64}\n\n", f"{ORIGIN}\n3\n{b64[:-4]}\n"]:
        with pytest.raises(CheckpointError):
            parse_note(bad)


def test_signing_refuses_bad_input() -> None:
    with pytest.raises(CheckpointError):
        sign_checkpoint(ORIGIN, 3, ROOT[:31], TEST_KEY)
    with pytest.raises(CheckpointError):
        sign_checkpoint(ORIGIN, -1, ROOT, TEST_KEY)
    with pytest.raises(CheckpointError):
        sign_checkpoint("two\nlines", 3, ROOT, TEST_KEY, "name")
    with pytest.raises(CheckpointError):
        sign_checkpoint(ORIGIN, 3, ROOT, TEST_KEY, "has space")


# --- signed-note text form, against golang.org/x/mod/sumdb/note -------------------------------------


def test_it_derives_the_go_reference_key_id_and_verifier_key() -> None:
    key = load_signing_key(GO["signer_key"])
    assert verifier_key("PeterNeumann", key) == GO["verifier_key"]
    assert key_id("PeterNeumann", key) == "PeterNeumann+c74f20a3"


def test_it_signs_the_go_reference_note_byte_for_byte() -> None:
    key = load_signing_key(GO["signer_key"])
    assert sign_note(GO["text"], key, "PeterNeumann") == GO["text"] + "\n" + GO["signature_line"]


def test_it_opens_a_note_and_ignores_signatures_from_other_keys() -> None:
    key = load_signing_key(GO["signer_key"])
    signed = GO["text"] + "\n" + GO["signature_line"] + GO["other_signature_line"]
    assert open_signed_note(signed, "PeterNeumann", public_key_bytes(key)) == GO["text"]


def test_it_rejects_a_signed_note_with_a_changed_text_or_no_trusted_signature() -> None:
    public = public_key_bytes(load_signing_key(GO["signer_key"]))
    changed = GO["text"].replace("cryptography", "cryptographY") + "\n" + GO["signature_line"]
    only_other = GO["text"] + "\n" + GO["other_signature_line"]
    for bad in [changed, only_other, GO["text"], GO["text"] + "\n", "\x01" + GO["text"] + "\n" + GO["signature_line"]]:
        with pytest.raises(CheckpointError):
            open_signed_note(bad, "PeterNeumann", public)


def test_a_checkpoint_round_trips_through_the_signed_note_text_form() -> None:
    cp = _signed()
    text = cp.signed_note()
    assert text.startswith(cp.note + "\n\u2014 " + ORIGIN + " ")
    verified = verify_signed_note(text, ORIGIN, PUBLIC)
    assert (verified.origin, verified.tree_size, verified.root_hash) == (ORIGIN, 3, ROOT)
    with pytest.raises(CheckpointError):
        verify_signed_note(text.replace("\n3\n", "\n4\n"), ORIGIN, PUBLIC)
    with pytest.raises(CheckpointError):
        verify_signed_note(text, ORIGIN, public_key_bytes(OTHER_KEY))


# --- keys ---------------------------------------------------------------------------------------------


def test_it_loads_a_key_from_base64_of_the_32_byte_seed() -> None:
    key = load_signing_key(private_key_b64(TEST_KEY))
    assert public_key_bytes(key) == PUBLIC


def test_it_loads_a_key_from_pem_text_and_from_a_pem_file(tmp_path: Path) -> None:
    pem = TEST_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    assert public_key_bytes(load_signing_key(pem)) == PUBLIC
    path = tmp_path / "ledger.pem"
    path.write_text(pem)
    assert public_key_bytes(load_signing_key(str(path))) == PUBLIC


def test_it_loads_a_key_from_a_file_holding_base64(tmp_path: Path) -> None:
    path = tmp_path / "ledger.key"
    path.write_text(private_key_b64(TEST_KEY) + "\n")
    assert public_key_bytes(load_signing_key(str(path))) == PUBLIC


@pytest.mark.parametrize("value", ["", "not a key", base64.b64encode(b"x" * 31).decode(), "/no/such/file.pem"])
def test_it_refuses_what_is_not_an_ed25519_key_without_echoing_it(value: str) -> None:
    with pytest.raises(KeyFormatError) as caught:
        load_signing_key(value)
    if value:
        assert value not in str(caught.value)


def test_it_refuses_a_pem_key_of_another_algorithm() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(KeyFormatError, match="Ed25519"):
        load_signing_key(pem)


def test_generated_keys_are_fresh_ed25519_keys() -> None:
    a, b = generate_key(), generate_key()
    assert isinstance(a, Ed25519PrivateKey)
    assert public_key_b64(a) != public_key_b64(b)


def test_the_key_record_is_what_the_keys_endpoint_serves() -> None:
    record = key_record(ORIGIN, TEST_KEY)
    assert record == {
        "key_id": key_id(ORIGIN, TEST_KEY),
        "algorithm": "Ed25519",
        "public_key": public_key_b64(TEST_KEY),
    }
    assert base64.b64decode(record["public_key"]) == PUBLIC
