"""A small in-memory ledger for tests: events → entries → Merkle store → signed checkpoints → bundles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provenance.ledger import merkle
from provenance.ledger.bundle import bundle_consistency, bundle_event, make_bundle
from provenance.ledger.checkpoint import Checkpoint, key_record, sign_checkpoint
from provenance.ledger.entry import encode_entry, event_sha256

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ledger"
ORIGIN = "ledger.example.org/dscsa"
# A fixed seed keeps signatures reproducible between runs (Ed25519 is deterministic).
TEST_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=UTC)


def make_event(i: int) -> dict[str, object]:
    return {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.UUID(int=i + 1)}",
        "eventTime": "2026-03-14T09:00:00.000Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": [f"urn:epc:id:sgtin:0614141.107346.{1000 + i}"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "quantity": 1.0 + i,
    }


@dataclass
class Ledger:
    key: Ed25519PrivateKey = TEST_KEY
    store: merkle.MemoryNodeStore = field(default_factory=merkle.MemoryNodeStore)
    events: list[dict[str, object]] = field(default_factory=list)
    entries: list[bytes] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.entries)

    def append(self, count: int) -> None:
        new = []
        for _ in range(count):
            i = len(self.events)
            event = make_event(i)
            entry = encode_entry(
                seq=i,
                event_id=str(event["eventID"]),
                event_hash=f"ni:///sha-256;{i:064x}?ver=CBV2.0",
                record_time=T0 + timedelta(seconds=i),
                submitter="0614141000012",
                received_sha256=event_sha256(event),
            )
            self.events.append(event)
            self.entries.append(entry)
            new.append(merkle.leaf_hash(entry))
        merkle.append_leaves(self.store, self.size - count, new)

    def checkpoint(self, tree_size: int | None = None) -> Checkpoint:
        size = self.size if tree_size is None else tree_size
        return sign_checkpoint(ORIGIN, size, merkle.root(self.store, size), self.key, timestamp=T0)

    def bundle(
        self, indexes: list[int], *, with_events: bool = True, since: int | None = None, tree_size: int | None = None
    ) -> dict[str, object]:
        size = self.size if tree_size is None else tree_size
        events = [
            bundle_event(
                event_id=str(self.events[i]["eventID"]),
                leaf_index=i,
                entry=self.entries[i],
                audit_path=merkle.inclusion_proof(self.store, i, size),
                event=self.events[i] if with_events else None,
            )
            for i in indexes
        ]
        consistency = None
        if since is not None:
            consistency = bundle_consistency(
                first_checkpoint=self.checkpoint(since),
                consistency_path=merkle.consistency_proof(self.store, since, size),
            )
        return make_bundle(
            checkpoint=self.checkpoint(size),
            keys=[key_record(ORIGIN, self.key)],
            events=events,
            consistency=consistency,
        )


def build_ledger(count: int) -> Ledger:
    ledger = Ledger()
    ledger.append(count)
    return ledger
