"""Offline verification of an exported ledger bundle: ``python -m provenance.ledger.verify BUNDLE.json``.

Needs only the standard library and ``cryptography``: no Django, no database, no network, so an
auditor can run it on a copy of this package alone. It checks, in order:

1. the checkpoint's Ed25519 signature, with the key the bundle lists under its ``key_id`` — or,
   better, with a key the auditor pinned (``--key``), since keys shipped inside the bundle only
   show the bundle is self-consistent;
2. for every event: the entry bytes decode as ``provenance-ledger-entry/v1``, name this eventID
   and carry seq == leaf_index; the leaf hash; the inclusion proof against the checkpoint root;
   and, when the event object is included, that its RFC 8785 SHA-256 matches the entry and its
   eventID matches;
3. optionally, a consistency proof from an earlier checkpoint (from the bundle, or one the
   auditor kept: ``--since``), which is what shows history was not rewritten in between.

Exit status: 0 all checks pass; 1 a check failed (the first failure is named); 2 the bundle could
not be read.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .bundle import FORMAT
from .checkpoint import CheckpointError, VerifiedCheckpoint, verify_checkpoint
from .entry import EntryError, decode_entry, event_sha256
from .merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion

_HEX64 = re.compile(r"[0-9a-f]{64}")
_LISTED_EVENTS = 20  # a summary, not a listing: big bundles name the first few

__all__ = ["BundleError", "Failure", "VerificationReport", "main", "verify_bundle"]


class BundleError(ValueError):
    """The bundle is not a readable provenance-bundle/v1 document."""


@dataclass(frozen=True)
class Failure:
    where: str  # "checkpoint", "consistency" or "event <eventID>"
    reason: str
    event_id: str | None = None
    leaf_index: int | None = None

    def __str__(self) -> str:
        at = f" (leaf {self.leaf_index})" if self.leaf_index is not None else ""
        return f"{self.where}{at}: {self.reason}"


@dataclass
class VerificationReport:
    origin: str | None = None
    tree_size: int | None = None
    root_hash: str | None = None
    key_id: str | None = None
    timestamp: str | None = None
    key_pinned: bool = False
    events_total: int = 0
    events_verified: list[str] = field(default_factory=list)
    consistency_from: int | None = None
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        lines = [f"{FORMAT}: {'OK' if self.ok else 'FAILED'}"]
        if self.origin is not None:
            lines.append(f"log          {self.origin}")
        if self.tree_size is not None:
            lines.append(f"checkpoint   tree size {self.tree_size}, root {self.root_hash}")
            lines.append(f"             key {self.key_id}, issued {self.timestamp} (issue time is not signed)")
        lines.append(f"events       {len(self.events_verified)} of {self.events_total} proven included")
        shown = self.events_verified[:_LISTED_EVENTS]
        lines.extend(f"             {event_id}" for event_id in shown)
        if len(self.events_verified) > len(shown):
            lines.append(f"             … and {len(self.events_verified) - len(shown)} more")
        if self.consistency_from is not None and self.ok:
            lines.append(f"consistency  the tree at size {self.consistency_from} is a prefix of this one")
        lines.extend(f"warning      {w}" for w in self.warnings)
        return "\n".join(lines)


# --- field readers: a malformed field is a failure of that item, not an unreadable bundle ---------


class _Malformed(ValueError):
    pass


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _Malformed(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Malformed(f"{what} is not valid base64") from None


def _hex_list(value: object, what: str) -> list[bytes]:
    if not isinstance(value, list) or not all(isinstance(h, str) and _HEX64.fullmatch(h) for h in value):
        raise _Malformed(f"{what} must be a list of 64-digit lowercase hex hashes")
    return [bytes.fromhex(h) for h in value]


def _keys(bundle: Mapping[str, object]) -> dict[str, list[bytes]]:
    keys = bundle.get("keys", [])
    if not isinstance(keys, list):
        raise BundleError("'keys' must be a list")
    by_id: dict[str, list[bytes]] = {}
    for i, key in enumerate(keys):
        if not isinstance(key, Mapping) or not isinstance(key.get("key_id"), str):
            raise BundleError(f"keys[{i}] must be an object with a key_id")
        if key.get("algorithm") != "Ed25519":
            continue  # an algorithm we do not know cannot vouch for anything; ignore it as signed-note does
        try:
            by_id.setdefault(key["key_id"], []).append(_b64(key.get("public_key"), f"keys[{i}].public_key"))
        except _Malformed as exc:
            raise BundleError(str(exc)) from None
    return by_id


def _verify_cp(
    checkpoint: object, bundle_keys: Mapping[str, list[bytes]], pinned: Sequence[bytes]
) -> VerifiedCheckpoint:
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError("checkpoint must be an object")
    kid = checkpoint.get("key_id")
    candidates = list(pinned) if pinned else bundle_keys.get(kid if isinstance(kid, str) else "", [])
    if not candidates:
        raise CheckpointError(f"no {'pinned' if pinned else 'included'} key has key_id {kid!r}")
    errors: list[CheckpointError] = []
    for public_key in candidates:
        try:
            return verify_checkpoint(checkpoint, public_key)
        except CheckpointError as exc:
            errors.append(exc)
    raise errors[0]


# --- the checks -------------------------------------------------------------------------------------


def _check_event(item: object, position: int, cp: VerifiedCheckpoint | None) -> tuple[str, Failure | None]:
    if not isinstance(item, Mapping):
        return f"events[{position}]", Failure(f"events[{position}]", "is not an object")
    event_id = item.get("event_id")
    label = event_id if isinstance(event_id, str) and event_id else f"events[{position}]"
    leaf_index = item.get("leaf_index")
    index_or_none = leaf_index if type(leaf_index) is int else None

    def fail(reason: str) -> tuple[str, Failure]:
        return label, Failure(f"event {label}", reason, label, index_or_none)

    if not isinstance(event_id, str) or not event_id:
        return fail("event_id is missing")
    if index_or_none is None or index_or_none < 0:
        return fail("leaf_index must be a non-negative integer")
    try:
        entry_bytes = _b64(item.get("entry"), "entry")
        audit_path = _hex_list(item.get("audit_path"), "audit_path")
    except _Malformed as exc:
        return fail(str(exc))

    try:
        entry = decode_entry(entry_bytes)
    except EntryError as exc:
        return fail(f"entry bytes are not a valid ledger entry: {exc}")
    if entry.event_id != event_id:
        return fail(f"entry bytes name eventID {entry.event_id!r}, not this one")
    if entry.seq != index_or_none:
        return fail(f"entry seq {entry.seq} differs from leaf_index {index_or_none}")
    computed_leaf = leaf_hash(entry_bytes)
    if "leaf_hash" in item and item["leaf_hash"] != computed_leaf.hex():
        return fail("leaf_hash is not SHA-256(0x00 ‖ entry)")
    if "event" in item:
        event = item["event"]
        if not isinstance(event, Mapping):
            return fail("event must be a JSON object")
        try:
            digest = event_sha256(event)
        except EntryError as exc:
            return fail(f"event cannot be canonicalised: {exc}")
        if digest != entry.received_sha256:
            return fail("event content does not match the entry's received_sha256 (RFC 8785 SHA-256)")
        if "eventID" in event and event["eventID"] != event_id:
            return fail("the included event carries a different eventID")
    if cp is None:
        return fail("not checked: the checkpoint did not verify")
    try:
        verify_inclusion(computed_leaf, index_or_none, cp.tree_size, audit_path, cp.root_hash)
    except ProofError as exc:
        return fail(f"inclusion proof failed: {exc}")
    return label, None


def _check_consistency(
    bundle: Mapping[str, object],
    cp: VerifiedCheckpoint,
    bundle_keys: Mapping[str, list[bytes]],
    pinned: Sequence[bytes],
    previous: Mapping[str, object] | None,
) -> tuple[int | None, Failure | None]:
    section = bundle.get("consistency")
    if section is None and previous is None:
        return None, None
    if not isinstance(section, Mapping):
        return None, Failure("consistency", "the bundle has no consistency proof")
    try:
        path = _hex_list(section.get("consistency_path"), "consistency_path")
        first = _verify_cp(previous if previous is not None else section.get("first_checkpoint"), bundle_keys, pinned)
    except (_Malformed, CheckpointError) as exc:
        return None, Failure("consistency", str(exc))
    if previous is not None:
        # The auditor's own copy replaces the bundle's: the proof must start from what they hold.
        included = section.get("first_checkpoint")
        if isinstance(included, Mapping) and included.get("tree_size") != first.tree_size:
            return None, Failure(
                "consistency", f"the bundle proves from size {included.get('tree_size')}, not {first.tree_size}"
            )
    if first.origin != cp.origin:
        return None, Failure("consistency", f"earlier checkpoint is from another log ({first.origin!r})")
    try:
        verify_consistency(first.tree_size, cp.tree_size, first.root_hash, cp.root_hash, path)
    except ProofError as exc:
        return None, Failure("consistency", f"consistency proof from size {first.tree_size} failed: {exc}")
    return first.tree_size, None


def verify_bundle(
    bundle: object,
    *,
    trusted_keys: Sequence[bytes] = (),
    previous_checkpoint: Mapping[str, object] | None = None,
) -> VerificationReport:
    """Check a bundle; raise BundleError if it is unreadable, otherwise report every failure found.

    ``trusted_keys`` (raw 32-byte Ed25519 public keys) pin the log's key; without them the
    checkpoint is checked against the keys the bundle itself lists. ``previous_checkpoint`` is an
    earlier checkpoint the caller trusts; the bundle must then prove consistency from it.
    """
    if not isinstance(bundle, Mapping):
        raise BundleError("a bundle is a JSON object")
    if bundle.get("format") != FORMAT:
        raise BundleError(f"'format' must be {FORMAT!r}")
    events = bundle.get("events", [])
    if not isinstance(events, list):
        raise BundleError("'events' must be a list")
    if "checkpoint" not in bundle:
        raise BundleError("the bundle has no checkpoint")
    bundle_keys = _keys(bundle)

    report = VerificationReport(key_pinned=bool(trusted_keys), events_total=len(events))
    if not trusted_keys:
        report.warnings.append(
            "the checkpoint signature was checked with a key shipped in the bundle; "
            "pin the log's published key with --key to make the check meaningful"
        )
    cp: VerifiedCheckpoint | None = None
    try:
        cp = _verify_cp(bundle["checkpoint"], bundle_keys, trusted_keys)
    except CheckpointError as exc:
        report.failures.append(Failure("checkpoint", str(exc)))
    else:
        checkpoint = bundle["checkpoint"]  # a Mapping: _verify_cp checked
        report.origin, report.tree_size, report.root_hash = cp.origin, cp.tree_size, cp.root_hash.hex()
        report.key_id = str(checkpoint.get("key_id")) if isinstance(checkpoint, Mapping) else None
        report.timestamp = str(checkpoint.get("timestamp")) if isinstance(checkpoint, Mapping) else None

    seen: set[str] = set()
    for position, item in enumerate(events):
        label, failure = _check_event(item, position, cp)
        if failure is not None:
            report.failures.append(failure)
        elif label in seen:
            report.failures.append(Failure(f"event {label}", "listed twice", label))
        else:
            seen.add(label)
            report.events_verified.append(label)

    if cp is not None:
        report.consistency_from, failure = _check_consistency(
            bundle, cp, bundle_keys, trusted_keys, previous_checkpoint
        )
        if failure is not None:
            report.failures.append(failure)
    return report


# --- command line ----------------------------------------------------------------------------------


def _read_public_key(value: str) -> bytes:
    text = value
    try:
        with open(value, encoding="ascii") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        pass  # not a readable file: take the value itself as base64
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise argparse.ArgumentTypeError(
            "--key takes base64 of a 32-byte Ed25519 public key, or a file of it"
        ) from None
    if len(raw) != 32:
        raise argparse.ArgumentTypeError("--key must decode to 32 bytes")
    return raw


def _load_json(path: str) -> object:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m provenance.ledger.verify",
        description="Verify an exported provenance ledger bundle offline (RFC 9162 proofs, Ed25519 checkpoint).",
    )
    parser.add_argument("bundle", help="path to the bundle JSON file ('-' for standard input)")
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        type=_read_public_key,
        help="the log's Ed25519 public key (base64 of 32 bytes, or a file holding it); repeatable",
    )
    parser.add_argument(
        "--since", help="an earlier checkpoint JSON you kept; the bundle must prove consistency from it"
    )
    args = parser.parse_args(argv)

    try:
        bundle = json.load(sys.stdin) if args.bundle == "-" else _load_json(args.bundle)
        previous = _load_json(args.since) if args.since else None
        if previous is not None and not isinstance(previous, Mapping):
            raise BundleError("--since must be a checkpoint JSON object")
        report = verify_bundle(bundle, trusted_keys=args.key, previous_checkpoint=previous)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, BundleError) as exc:
        print(f"unreadable bundle: {exc}", file=sys.stderr)
        return 2

    print(report.summary())
    if report.ok:
        return 0
    print(f"FAILED: {report.failures[0]}", file=sys.stderr)
    if len(report.failures) > 1:
        print(f"({len(report.failures) - 1} more failure(s))", file=sys.stderr)
        for failure in report.failures[1:]:
            print(f"  {failure}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
