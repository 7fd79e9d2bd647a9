"""The Django side of the verifiable ledger: Merkle nodes in the database, entries of ledger rows."""

from __future__ import annotations

import operator
from collections.abc import Collection, Mapping, Sequence
from functools import reduce

from django.db.models import Q

from .ledger import merkle
from .ledger.entry import encode_entry
from .models import CustodyEvent, MerkleNode

NodeId = tuple[int, int]


class DbNodeStore:
    """merkle.NodeStore on the MerkleNode table: one query per proof, one bulk insert per append."""

    def get_many(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        if not ids:
            return {}
        condition = reduce(operator.or_, (Q(level=level, index=index) for level, index in ids))
        return {(level, index): bytes(value)
                for level, index, value in MerkleNode.objects.filter(condition).values_list("level", "index", "hash")}

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None:
        # Nodes are final once complete; the append-only triggers refuse any overwrite.
        MerkleNode.objects.bulk_create(
            [MerkleNode(level=level, index=index, hash=value) for (level, index), value in nodes.items()],
            batch_size=5000,
        )


def entry_bytes(event: CustodyEvent, submitter_gln: str) -> bytes:
    return encode_entry(
        seq=event.seq,
        event_id=event.event_id,
        event_hash=event.event_hash,
        record_time=event.record_time,
        submitter=submitter_gln,
        received_sha256=event.body_sha256,
    )


def ledger_integrate(*, rows: Sequence[CustodyEvent], submitter_gln: str) -> bytes:
    """Add the rows' leaves to the tree (called under the sequencer lock); returns the new root."""
    if not rows:
        return merkle.root(DbNodeStore(), 0)
    leaves = [merkle.leaf_hash(entry_bytes(row, submitter_gln)) for row in rows]
    return merkle.append_leaves(DbNodeStore(), rows[0].seq, leaves)


def tree_root(tree_size: int) -> bytes:
    return merkle.root(DbNodeStore(), tree_size)


def inclusion_proof(leaf_index: int, tree_size: int) -> list[bytes]:
    return merkle.inclusion_proof(DbNodeStore(), leaf_index, tree_size)


def consistency_proof(first: int, second: int) -> list[bytes]:
    return merkle.consistency_proof(DbNodeStore(), first, second)
