"""The canonical entry bytes (provenance-ledger-entry/v1) and RFC 8785 hashing of events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from provenance.ledger import merkle
from provenance.ledger.entry import EntryError, LedgerEntry, canonical_json, decode_entry, encode_entry, event_sha256

from .support import FIXTURES

EXAMPLE = FIXTURES / "entry-example"
JCS = FIXTURES / "json-canonicalization"

FIELDS = {
    "seq": 41,
    "event_id": "urn:uuid:7d2e6f0a-3c1b-4e8a-9f4d-2b6c8e1a5d30",
    "event_hash": "ni:///sha-256;5f1c8a0d2b9e4f3a6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3?ver=CBV2.0",
    "record_time": datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC),
    "submitter": "0614141000012",
    "received_sha256": "59b16d570fad6c9885a0af40cec6d43167b1ee709f14525debe4e0ca91defc02",
}


def test_it_encodes_the_documented_example_byte_for_byte() -> None:
    assert encode_entry(**FIELDS) == (EXAMPLE / "entry.txt").read_bytes()


def test_the_example_leaf_hash_is_sha256_of_a_zero_byte_and_the_entry() -> None:
    # The same figure docs/ledger-format.md derives with printf and sha256sum.
    leaf = merkle.leaf_hash((EXAMPLE / "entry.txt").read_bytes())
    assert leaf.hex() == "e8ca8a34c63e0c7f9a89403ec9fab3938b6c5bb3fe6872e1b57a2408bbccf67e"


def test_the_example_received_sha256_is_the_rfc_8785_hash_of_the_example_event() -> None:
    event = json.loads((EXAMPLE / "event.json").read_text())
    assert event_sha256(event) == FIELDS["received_sha256"]


def test_the_entry_bytes_contain_the_event_id_as_text() -> None:
    assert b"\nevent_id=urn:uuid:7d2e6f0a-3c1b-4e8a-9f4d-2b6c8e1a5d30\n" in encode_entry(**FIELDS)


def test_decoding_returns_what_was_encoded() -> None:
    entry = decode_entry(encode_entry(**FIELDS))
    assert entry == LedgerEntry(**FIELDS)
    assert entry.encode() == encode_entry(**FIELDS)


def test_it_writes_record_time_in_utc_with_microseconds() -> None:
    eastern = timezone(timedelta(hours=-5))
    fields = {**FIELDS, "record_time": datetime(2026, 3, 14, 4, 26, 53, tzinfo=eastern)}
    assert b"\nrecord_time=2026-03-14T09:26:53.000000Z\n" in encode_entry(**fields)


def test_it_refuses_a_naive_record_time() -> None:
    with pytest.raises(EntryError, match="timezone"):
        encode_entry(**{**FIELDS, "record_time": datetime(2026, 3, 14, 9, 0)})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", "urn:uuid:x\nseq=0"),
        ("event_id", "urn:uuid:x\r"),
        ("event_id", "tab\there"),
        ("event_id", ""),
        ("event_id", " urn:uuid:x"),
        ("event_hash", "ni:///sha-256;abc\x7f"),
        ("submitter", "0614141000012 "),
        ("received_sha256", "ABCDEF" + "0" * 58),
        ("received_sha256", "0" * 63),
        ("seq", -1),
        ("seq", True),
    ],
)
def test_it_refuses_values_that_would_make_the_entry_ambiguous(field: str, value: object) -> None:
    with pytest.raises(EntryError):
        encode_entry(**{**FIELDS, field: value})


def test_non_ascii_values_are_kept_verbatim_in_utf_8() -> None:
    entry = encode_entry(**{**FIELDS, "event_id": "https://id.example/évènement/1"})
    assert "event_id=https://id.example/évènement/1\n".encode() in entry
    assert decode_entry(entry).event_id == "https://id.example/évènement/1"


def _mutations(good: bytes) -> list[bytes]:
    text = good.decode()
    return [
        good[:-1],  # no final line feed
        good + b"\n",  # trailing blank line
        good.replace(b"\n", b"\r\n"),
        good.replace(b"seq=41", b"seq=041"),
        good.replace(b"seq=41", b"seq=+41"),
        good.replace(b"provenance-ledger-entry/v1", b"provenance-ledger-entry/v2"),
        good.replace(b"record_time=2026-03-14T09:26:53.589793Z", b"record_time=2026-03-14T09:26:53.589Z"),
        good.replace(b"record_time=2026-03-14T09:26:53.589793Z", b"record_time=2026-03-14T09:26:53.589793+00:00"),
        good.replace(b"record_time=2026-03-14T09:26:53.589793Z", b"record_time=2026-02-30T09:26:53.589793Z"),
        good.replace(b"event_id=", b"eventID="),
        good.replace(b"event_id=", b"event_id ="),
        "\n".join([text.split("\n")[0], *reversed(text.split("\n")[1:7]), ""]).encode(),  # fields reordered
        good.replace(b"submitter=0614141000012\n", b""),
        good + b"extra=1\n",
        b"\xff" + good,
    ]


@pytest.mark.parametrize("index", range(15))
def test_decoding_refuses_every_non_canonical_variant(index: int) -> None:
    bad = _mutations(encode_entry(**FIELDS))[index]
    with pytest.raises(EntryError):
        decode_entry(bad)


# --- RFC 8785 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["values", "weird"])
def test_canonical_json_matches_the_reference_test_data(name: str) -> None:
    source = json.loads((JCS / f"{name}.input.json").read_text(encoding="utf-8"))
    assert canonical_json(source) == (JCS / f"{name}.output.json").read_bytes()


@pytest.mark.parametrize(
    ("bits", "text"),
    [
        # RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript spelling.
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ],
)
def test_canonical_json_spells_numbers_as_ecmascript_does(bits: str, text: str) -> None:
    import struct

    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_json(value) == text.encode()


def test_whitespace_key_order_and_number_spelling_do_not_change_the_event_hash() -> None:
    a = json.loads('{"quantity": 1.0, "eventID": "urn:uuid:1", "epcList": ["a", "b"]}')
    b = json.loads('{ "epcList":["a","b"],\n "eventID":"urn:uuid:1", "quantity":1 }')
    assert event_sha256(a) == event_sha256(b)


def test_any_change_of_content_changes_the_event_hash() -> None:
    a = {"eventID": "urn:uuid:1", "epcList": ["a", "b"]}
    assert event_sha256(a) != event_sha256({"eventID": "urn:uuid:1", "epcList": ["b", "a"]})
    assert event_sha256(a) != event_sha256({"eventID": "urn:uuid:1", "epcList": ["a", "b"], "x": None})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1: "x"}, {"a": {1, 2}}, "\ud800", 10**400])
def test_canonical_json_refuses_what_json_cannot_carry(value: object) -> None:
    with pytest.raises(EntryError):
        canonical_json(value)
