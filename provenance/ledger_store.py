"""The Django side of the verifiable ledger: Merkle nodes in the database, entries of ledger rows."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from django.db import connection

from .ledger import merkle
from .ledger.entry import encode_entry
from .models import CustodyEvent, MerkleNode

NodeId = tuple[int, int]

# Bounds the size of one IN list; a proof needs ~2·log2(n) nodes, a trace's batch a few thousand.
_IDS_PER_QUERY = 2000


class DbNodeStore:
    """merkle.NodeStore on the MerkleNode table: one query per proof, one bulk insert per append."""

    def get_many(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        found: dict[NodeId, bytes] = {}
        ordered = sorted(ids)
        table = connection.ops.quote_name(MerkleNode._meta.db_table)
        for start in range(0, len(ordered), _IDS_PER_QUERY):
            chunk = ordered[start : start + _IDS_PER_QUERY]
            # Row values against a VALUES list (SQLite wants a subquery there): one index probe per node, and
            # no ORM query compilation on the proof path.
            placeholders = "VALUES " + ", ".join(["(%s, %s)"] * len(chunk))
            with connection.cursor() as cursor:
                cursor.execute(
                    f'SELECT level, "index", hash FROM {table} WHERE (level, "index") IN ({placeholders})',  # noqa: S608
                    [value for node in chunk for value in node],
                )
                found.update(((level, index), bytes(value)) for level, index, value in cursor.fetchall())
        return found

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None:
        # Nodes are final once complete; the append-only triggers refuse any overwrite.
        from .bulk import insert_rows

        insert_rows(
            MerkleNode, ("level", "index", "hash"), [(level, index, value) for (level, index), value in nodes.items()]
        )


class _RecordingStore:
    """Answers every read with a dummy hash and remembers what was asked: the node ids a set of proofs needs."""

    def __init__(self) -> None:
        self.wanted: set[NodeId] = set()

    def get_many(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        self.wanted.update(ids)
        return dict.fromkeys(ids, bytes(merkle.HASH_SIZE))

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None:  # pragma: no cover - never written to
        raise NotImplementedError


class _DictStore:
    def __init__(self, nodes: Mapping[NodeId, bytes]) -> None:
        self.nodes = nodes

    def get_many(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        return {i: self.nodes[i] for i in ids if i in self.nodes}

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None:  # pragma: no cover - read-only
        raise NotImplementedError


def entry_bytes(event: CustodyEvent, submitter_gln: str) -> bytes:
    return encode_entry(
        seq=event.seq,
        event_id=event.event_id,
        event_hash=event.event_hash,
        record_time=event.record_time,
        submitter=submitter_gln,
        received_sha256=event.body_sha256,
    )


def event_entry(event: CustodyEvent) -> bytes:
    """The entry bytes of a stored row (its submitter's GLN is part of the entry)."""
    return entry_bytes(event, event.submitter.gln)


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


def inclusion_proofs(leaf_indexes: Collection[int], tree_size: int) -> dict[int, list[bytes]]:
    """Audit paths for many leaves of one tree, reading the nodes they share once (a trace's bundle)."""
    recorder = _RecordingStore()
    for index in leaf_indexes:
        merkle.inclusion_proof(recorder, index, tree_size)
    store = _DictStore(DbNodeStore().get_many(recorder.wanted))
    return {index: merkle.inclusion_proof(store, index, tree_size) for index in leaf_indexes}


def consistency_proof(first: int, second: int) -> list[bytes]:
    return merkle.consistency_proof(DbNodeStore(), first, second)
