"""The ledger entry: the exact bytes that become one Merkle leaf (leaf hash = SHA-256(0x00 ‖ entry)).

Format ``provenance-ledger-entry/v1`` (also in docs/ledger-format.md), UTF-8, seven lines, each
ending in LF (0x0A), the last one included, in exactly this order::

    provenance-ledger-entry/v1
    seq=<ledger sequence number = 0-based leaf index; ASCII decimal, no sign, no leading zeros>
    event_id=<the EPCIS eventID, verbatim>
    event_hash=<the CBV 2.0 event hash, e.g. ni:///sha-256;<hex>?ver=CBV2.0, verbatim>
    record_time=<recordTime in UTC: YYYY-MM-DDTHH:MM:SS.ffffffZ, always 6 fraction digits>
    submitter=<GLN of the submitting party, verbatim>
    received_sha256=<64 lowercase hex: SHA-256 of the RFC 8785 (JCS) form of the event object as received>

A value is everything after the first ``=`` up to the LF. There is no escaping: values are
non-empty, carry no leading or trailing space and no control character (U+0000–U+001F, U+007F),
and an entry that would need one is refused. eventIDs are URIs, GLNs are digits and hashes are
ASCII, so nothing legitimate is refused, and a third party can rebuild or parse an entry with a
format string and ``split("\\n")``. Because values are verbatim, the entry bytes contain the
eventID as text. Decoding is strict: it re-encodes and demands identical bytes, so every entry
has exactly one byte form.

``received_sha256`` pins the event's content, not just its identity: the JSON object is
serialised with RFC 8785 (sorted keys, no whitespace, ECMAScript number form), so any JSON
parser's view of the event hashes the same way, whatever whitespace or key order it arrived in.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

FORMAT_LINE = "provenance-ledger-entry/v1"
FIELDS = ("seq", "event_id", "event_hash", "record_time", "submitter", "received_sha256")

_RECORD_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")

__all__ = [
    "FORMAT_LINE",
    "EntryError",
    "LedgerEntry",
    "canonical_json",
    "decode_entry",
    "encode_entry",
    "event_sha256",
    "format_record_time",
]


class EntryError(ValueError):
    """An entry could not be encoded or decoded."""


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    event_id: str
    event_hash: str
    record_time: datetime
    submitter: str
    received_sha256: str

    def encode(self) -> bytes:
        return encode_entry(
            seq=self.seq,
            event_id=self.event_id,
            event_hash=self.event_hash,
            record_time=self.record_time,
            submitter=self.submitter,
            received_sha256=self.received_sha256,
        )


def format_record_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: one spelling per instant."""
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive time has no defined instant; guessing the zone would put a wrong time in the ledger.
        raise EntryError("record_time must be timezone-aware")
    u = value.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"


def _parse_record_time(text: str) -> datetime:
    if not _RECORD_TIME.fullmatch(text):
        raise EntryError("record_time must look like 2025-01-31T12:00:00.000000Z")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise EntryError(f"record_time is not a valid time: {exc}") from None


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise EntryError(f"{name} must be a non-empty string")
    if _FORBIDDEN.search(value):
        raise EntryError(f"{name} must not contain control characters or line breaks")
    if value != value.strip(" "):
        raise EntryError(f"{name} must not start or end with a space")
    return value


def encode_entry(
    *,
    seq: int,
    event_id: str,
    event_hash: str,
    record_time: datetime,
    submitter: str,
    received_sha256: str,
) -> bytes:
    if type(seq) is not int or seq < 0:
        raise EntryError("seq must be a non-negative integer")
    if not isinstance(received_sha256, str) or not _SHA256_HEX.fullmatch(received_sha256):
        raise EntryError("received_sha256 must be 64 lowercase hex digits")
    values = (
        str(seq),
        _check_text("event_id", event_id),
        _check_text("event_hash", event_hash),
        format_record_time(record_time),
        _check_text("submitter", submitter),
        received_sha256,
    )
    lines = [FORMAT_LINE] + [f"{k}={v}" for k, v in zip(FIELDS, values, strict=True)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def decode_entry(data: bytes) -> LedgerEntry:
    try:
        text = bytes(data).decode("utf-8")
    except (UnicodeDecodeError, TypeError):
        raise EntryError("entry is not UTF-8") from None
    if not text.endswith("\n"):
        raise EntryError("entry must end with a line feed")
    lines = text[:-1].split("\n")
    if lines[0] != FORMAT_LINE:
        raise EntryError(f"entry does not start with {FORMAT_LINE!r}")
    if len(lines) != len(FIELDS) + 1:
        raise EntryError(f"entry must have {len(FIELDS) + 1} lines, has {len(lines)}")
    values: dict[str, str] = {}
    for expected, line in zip(FIELDS, lines[1:], strict=True):
        key, sep, value = line.partition("=")
        if not sep or key != expected:
            raise EntryError(f"expected a {expected}= line, got {line[:40]!r}")
        values[key] = value
    if not _DECIMAL.fullmatch(values["seq"]):
        raise EntryError("seq must be a decimal number without leading zeros")
    entry = LedgerEntry(
        seq=int(values["seq"]),
        event_id=values["event_id"],
        event_hash=values["event_hash"],
        record_time=_parse_record_time(values["record_time"]),
        submitter=values["submitter"],
        received_sha256=values["received_sha256"],
    )
    # Re-encoding checks every value rule and guarantees one byte form per entry.
    if entry.encode() != bytes(data):
        raise EntryError("entry is not in canonical form")
    return entry


# --- RFC 8785 JSON Canonicalization Scheme ---------------------------------------------------------


def _jcs_number(value: float) -> str:
    """ECMAScript Number::toString, which RFC 8785 §3.2.2.3 mandates for every JSON number."""
    if math.isnan(value) or math.isinf(value):
        raise EntryError("NaN and Infinity are not JSON")
    if value == 0:
        return "0"  # also for -0
    sign = "-" if value < 0 else ""
    mantissa, _, exp = repr(abs(value)).partition("e")  # repr is the shortest round-trip form, as in ES
    point = mantissa.find(".")
    if point < 0:
        point = len(mantissa)
    digits = mantissa.replace(".", "")
    n = point + int(exp or 0)  # value = 0.<digits> * 10**n
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        e_text = f"e+{e}" if e >= 0 else f"e-{-e}"
        body = (digits if k == 1 else digits[0] + "." + digits[1:]) + e_text
    return sign + body


def _jcs(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        # JSON numbers are IEEE doubles in JCS; integers that fit exactly keep their digits.
        if abs(value) <= 2**53:
            out.append(str(value))
        else:
            try:
                out.append(_jcs_number(float(value)))
            except OverflowError:
                raise EntryError("integer too large for a JSON number") from None
    elif isinstance(value, float):
        out.append(_jcs_number(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _jcs(item, out)
        out.append("]")
    elif isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise EntryError("JSON object keys must be strings")
        out.append("{")
        # RFC 8785 sorts by UTF-16 code units, which differs from code-point order above U+FFFF.
        for i, key in enumerate(sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _jcs(value[key], out)
        out.append("}")
    else:
        raise EntryError(f"{type(value).__name__} is not a JSON value")


def canonical_json(value: object) -> bytes:
    """RFC 8785 (JCS) bytes of a JSON value as produced by ``json.loads``."""
    out: list[str] = []
    _jcs(value, out)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError:
        raise EntryError("JSON text contains a lone surrogate") from None


def event_sha256(event: Mapping[str, object]) -> str:
    """The ``received_sha256`` of an EPCIS event object: SHA-256 hex of its RFC 8785 form."""
    return hashlib.sha256(canonical_json(event)).hexdigest()
