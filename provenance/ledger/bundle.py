"""The exported proof bundle ``provenance-bundle/v1``: everything an auditor needs, in one JSON file.

::

    {
      "format": "provenance-bundle/v1",
      "checkpoint": {tree_size, root_hash, timestamp, key_id, signature, note},   # as the API serves it
      "keys": [{"key_id": str, "algorithm": "Ed25519", "public_key": base64 of 32 bytes}],
      "events": [
        {
          "event_id": str,                # the EPCIS eventID
          "leaf_index": int,              # 0-based; equals the entry's seq
          "entry": base64,                # the exact entry bytes (provenance-ledger-entry/v1)
          "audit_path": [hex, ...],       # RFC 9162 inclusion proof for leaf_index in checkpoint.tree_size
          "leaf_hash": hex,               # optional convenience: SHA-256(0x00 ‖ entry)
          "event": {...}                  # optional: the EPCIS event object as received
        }
      ],
      "consistency": {                    # optional
        "first_checkpoint": {...},        # an earlier checkpoint of the same log
        "consistency_path": [hex, ...]    # RFC 9162 consistency proof from its size to checkpoint.tree_size
      }
    }

Verification rules are in ``provenance.ledger.verify`` and docs/ledger-format.md. These helpers
build the structure from typed values so exporters cannot drift from the verifier.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

from .checkpoint import Checkpoint
from .merkle import leaf_hash

FORMAT = "provenance-bundle/v1"

__all__ = ["FORMAT", "bundle_consistency", "bundle_event", "make_bundle"]


def bundle_event(
    *,
    event_id: str,
    leaf_index: int,
    entry: bytes,
    audit_path: Sequence[bytes],
    event: Mapping[str, object] | None = None,
) -> dict[str, object]:
    item: dict[str, object] = {
        "event_id": event_id,
        "leaf_index": leaf_index,
        "entry": base64.b64encode(entry).decode("ascii"),
        "leaf_hash": leaf_hash(entry).hex(),
        "audit_path": [h.hex() for h in audit_path],
    }
    if event is not None:
        item["event"] = dict(event)
    return item


def bundle_consistency(
    *, first_checkpoint: Checkpoint | Mapping[str, object], consistency_path: Sequence[bytes]
) -> dict[str, object]:
    first = first_checkpoint.to_dict() if isinstance(first_checkpoint, Checkpoint) else dict(first_checkpoint)
    return {"first_checkpoint": first, "consistency_path": [h.hex() for h in consistency_path]}


def make_bundle(
    *,
    checkpoint: Checkpoint | Mapping[str, object],
    keys: Sequence[Mapping[str, str]],
    events: Sequence[Mapping[str, object]] = (),
    consistency: Mapping[str, object] | None = None,
) -> dict[str, object]:
    bundle: dict[str, object] = {
        "format": FORMAT,
        "checkpoint": checkpoint.to_dict() if isinstance(checkpoint, Checkpoint) else dict(checkpoint),
        "keys": [dict(k) for k in keys],
        "events": [dict(e) for e in events],
    }
    if consistency is not None:
        bundle["consistency"] = dict(consistency)
    return bundle
