"""Full verification of the stored ledger against itself and against every signed checkpoint.

Streams the ledger rows and the stored leaves in sequence order, a chunk at a time (never all rows
in memory), and checks that:

* sequence numbers run 0..n-1 without gaps or duplicates, n being the ledger head's tree size;
* every row's entry (docs/ledger-format.md §1) hashes to the leaf stored for its seq;
* every stored interior node is the hash of its two children (so every proof served is sound);
* every checkpoint's signature verifies with its registered key, and its root equals the root
  recomputed from the rows' own leaves (not from stored nodes, which could have been rewritten).

A mismatch is classified, so an operator knows what happened to the table: a row *changed* (its
entry differs from its stored leaf, and no other position explains it), *removed* (a gap, or fewer
rows than the tree), *inserted* (a duplicate or extra seq, or later rows shifted up), *reordered*
(two rows carry each other's entries), or a *tree node changed* (the row still matches what a
checkpoint signed, its stored leaf does not).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q

from .ledger import merkle
from .ledger.checkpoint import CheckpointError, format_timestamp, verify_checkpoint
from .ledger.entry import EntryError, encode_entry, event_sha256
from .models import Checkpoint, CustodyEvent, LedgerHead, MerkleNode, Organization, SigningKey

CHUNK = 10_000
# Mismatched rows kept (with their content) to explain them; every later one is only counted.
_KEPT_MISMATCHES = 200

CHANGED = "changed"
REMOVED = "removed"
INSERTED = "inserted"
REORDERED = "reordered"
NODE_CHANGED = "tree node changed"
CHECKPOINT_CHANGED = "checkpoint changed"


@dataclass(frozen=True)
class LedgerProblem:
    kind: str
    detail: str
    seq: int | None = None  # the first sequence number concerned; None when no single row is

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "ledger"
        return f"{where}: {self.kind} — {self.detail}"


@dataclass
class LedgerReport:
    tree_size: int = 0
    rows_checked: int = 0
    nodes_checked: int = 0
    checkpoints_checked: int = 0
    seconds: float = 0.0
    problems: list[LedgerProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def first(self) -> LedgerProblem | None:
        """The problem at the lowest sequence number (row problems before checkpoint-only ones)."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: (p.seq is None, p.seq or 0, p.kind == CHECKPOINT_CHANGED))


@dataclass
class _Row:
    seq: int
    record_time: datetime
    event_id: str
    event_hash: str
    body_sha256: str
    submitter_id: int
    body: object = None

    def entry(self, glns: dict[int, str], seq: int | None = None) -> bytes:
        return encode_entry(
            seq=self.seq if seq is None else seq,
            event_id=self.event_id,
            event_hash=self.event_hash,
            record_time=self.record_time,
            submitter=glns.get(self.submitter_id, "?"),
            received_sha256=self.body_sha256,
        )


class _TreeBuilder:
    """A compact range (one hash per set bit of the size): O(log n) memory, any prefix's root on demand."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing

    def push(self, leaf: bytes) -> None:
        level, value = 0, leaf
        stack = self._stack
        while stack and stack[-1][0] == level:
            value = merkle.node_hash(stack.pop()[1], value)
            level += 1
        stack.append((level, value))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return merkle.EMPTY_ROOT
        value = self._stack[-1][1]
        for _level, left in reversed(self._stack[:-1]):
            value = merkle.node_hash(left, value)
        return value


def _rows(start: int, end: int, *, bodies: bool) -> dict[int, list[_Row]]:
    by_seq: dict[int, list[_Row]] = {}
    columns = ("seq", "record_time", "event_id", "event_hash", "body_sha256", "submitter_id")
    if bodies:
        columns += ("body",)
    for values in (
        CustodyEvent.objects.filter(seq__gte=start, seq__lt=end).order_by("seq", "record_time").values_list(*columns)
    ):
        by_seq.setdefault(values[0], []).append(_Row(*values))
    return by_seq


def _body_digest(body: object) -> str | None:
    try:
        return event_sha256(body)  # type: ignore[arg-type]
    except EntryError:
        return None


def _nodes(level: int, start: int, end: int) -> dict[int, bytes]:
    return {
        index: bytes(value)
        for index, value in MerkleNode.objects.filter(level=level, index__gte=start, index__lt=end).values_list(
            "index", "hash"
        )
    }


def _checkpoints() -> Iterator[Checkpoint]:
    last_id = 0
    while True:
        batch = list(Checkpoint.objects.filter(id__gt=last_id).order_by("id")[:CHUNK])
        yield from batch
        if len(batch) < CHUNK:
            return
        last_id = batch[-1].id


def _checkpoint_dict(cp: Checkpoint) -> dict[str, object]:
    return {
        "tree_size": cp.tree_size,
        "root_hash": cp.root_hash,
        "timestamp": format_timestamp(cp.timestamp),
        "key_id": cp.key_id,
        "signature": cp.signature,
        "note": cp.note,
    }


class _Verifier:
    def __init__(self, chunk: int, bodies: bool) -> None:
        self.chunk = chunk
        self.bodies = bodies
        self.report = LedgerReport()
        self.glns = dict(Organization.objects.values_list("id", "gln"))
        self.keys = {k.key_id: base64.b64decode(k.public_key) for k in SigningKey.objects.all()}
        self.mismatches: dict[int, tuple[_Row, bytes]] = {}  # seq -> (row, stored leaf), the first few
        self.mismatch_count = 0
        self.roots_at: dict[int, bytes] = {}  # recomputed roots at every checkpointed size
        self.root_failures: list[tuple[Checkpoint, str]] = []  # checkpoints whose root the rows do not give
        self.good_sizes: list[int] = [0]

    def add(self, kind: str, detail: str, seq: int | None = None) -> None:
        self.report.problems.append(LedgerProblem(kind, detail, seq))

    def run(self) -> LedgerReport:
        started = time.perf_counter()
        n = LedgerHead.objects.filter(id=1).values_list("tree_size", flat=True).first() or 0
        self.report.tree_size = n
        checkpoint_sizes = sorted(set(Checkpoint.objects.values_list("tree_size", flat=True)))
        self._walk_leaves(n, set(checkpoint_sizes))
        self._check_beyond_head(n)
        self._check_interior_nodes(n)
        self._check_checkpoints(n)
        self._classify_mismatches()
        self._explain_root_failures()
        self.report.seconds = time.perf_counter() - started
        return self.report

    # --- rows and leaves ------------------------------------------------------------------------

    def _walk_leaves(self, n: int, checkpoint_sizes: set[int]) -> None:
        builder = _TreeBuilder()
        if 0 in checkpoint_sizes:
            self.roots_at[0] = builder.root()
        gap_start: int | None = None
        for start in range(0, n, self.chunk):
            end = min(start + self.chunk, n)
            rows = _rows(start, end, bodies=self.bodies)
            stored = _nodes(0, start, end)
            self.report.nodes_checked += len(stored)
            for seq in range(start, end):
                candidates = rows.get(seq)
                leaf_stored = stored.get(seq)
                if not candidates:
                    if gap_start is None:
                        gap_start = seq
                    leaf = leaf_stored  # keep the tree going on the stored leaf; the gap is reported
                else:
                    if gap_start is not None:
                        self._gap(gap_start, seq)
                        gap_start = None
                    leaf = self._check_row(seq, candidates, leaf_stored)
                if leaf is None:
                    self.add(NODE_CHANGED, "neither a row nor a stored leaf exists for this position", seq)
                    leaf = bytes(merkle.HASH_SIZE)
                builder.push(leaf)
                if builder.size in checkpoint_sizes:
                    self.roots_at[builder.size] = builder.root()
        if gap_start is not None:
            self._gap(gap_start, n)
        self.final_root = builder.root()

    def _gap(self, start: int, end: int) -> None:
        span = f"seq {start}" if end == start + 1 else f"seq {start}..{end - 1}"
        self.add(REMOVED, f"no row for {span}, though the tree has leaves for them (a gap in the sequence)", start)

    def _check_row(self, seq: int, candidates: list[_Row], leaf_stored: bytes | None) -> bytes:
        self.report.rows_checked += len(candidates)
        leaves = []
        for row in candidates:
            if self.bodies and _body_digest(row.body) != row.body_sha256:
                self.add(CHANGED, f"the stored event (body) of {row.event_id} no longer hashes to the "
                         "received_sha256 in its entry: the event's content was changed", seq)
            try:
                leaves.append(merkle.leaf_hash(row.entry(self.glns)))
            except EntryError as exc:
                self.add(CHANGED, f"the row no longer forms a valid entry: {exc}", seq)
                leaves.append(bytes(merkle.HASH_SIZE))
        if len(candidates) > 1:
            extra = len(candidates) - 1
            self.add(INSERTED, f"{extra + 1} rows carry this sequence number (a duplicate seq was inserted)", seq)
            genuine = [i for i, leaf in enumerate(leaves) if leaf == leaf_stored]
            return leaves[genuine[0]] if genuine else leaves[0]
        leaf = leaves[0]
        if leaf_stored is None:
            self.add(NODE_CHANGED, "the tree has no stored leaf for this row", seq)
        elif leaf != leaf_stored:
            self.mismatch_count += 1
            if len(self.mismatches) < _KEPT_MISMATCHES:
                self.mismatches[seq] = (candidates[0], leaf_stored)
        return leaf

    def _check_beyond_head(self, n: int) -> None:
        extra = CustodyEvent.objects.filter(Q(seq__gte=n) | Q(seq__lt=0))
        first = extra.order_by("seq").values_list("seq", flat=True).first()
        if first is not None:
            count = extra.count()
            self.add(INSERTED, f"{count} row(s) from seq {first} on lie outside the tree of {n} entries "
                     "(rows the sequencer never appended)", first)
        leaf_beyond = MerkleNode.objects.filter(level=0, index__gte=n).order_by("index").values_list(
            "index", flat=True).first()
        if leaf_beyond is not None:
            self.add(NODE_CHANGED, f"the tree stores leaves from index {leaf_beyond} on, beyond the head's {n} "
                     "entries (the head was rewound?)", leaf_beyond)

    # --- interior nodes ---------------------------------------------------------------------------

    def _check_interior_nodes(self, n: int) -> None:
        # A node above a leaf already found wrong is wrong because of it: only unexplained ones are reported.
        flagged = sorted(self.mismatches)
        level = 1
        while (n >> level) > 0:
            count = n >> level
            for start in range(0, count, self.chunk):
                end = min(start + self.chunk, count)
                parents = _nodes(level, start, end)
                children = _nodes(level - 1, 2 * start, 2 * end)
                self.report.nodes_checked += len(parents)
                for index in range(start, end):
                    left, right = children.get(2 * index), children.get(2 * index + 1)
                    value = parents.get(index)
                    if value is not None and left is not None and right is not None:
                        if merkle.node_hash(left, right) == value:
                            continue
                    first_leaf, past_leaf = index << level, (index + 1) << level
                    if any(first_leaf <= seq < past_leaf for seq in flagged):
                        continue
                    self.add(NODE_CHANGED, f"stored node (level {level}, index {index}) is missing or not the "
                             "hash of its children; proofs through it would fail", first_leaf)
                    return  # one broken interior node is enough to report; the rest repeats it
            level += 1
        stored_root = self._stored_root(n)
        if stored_root is not None and stored_root != self.final_root and not flagged:
            self.add(NODE_CHANGED, "the root of the stored tree differs from the root of the rows' leaves", None)

    def _stored_root(self, n: int) -> bytes | None:
        from .ledger_store import tree_root

        try:
            return tree_root(n)
        except merkle.MissingNodeError as exc:
            self.add(NODE_CHANGED, f"the stored tree cannot produce its root: {exc}", None)
            return None

    # --- checkpoints ------------------------------------------------------------------------------

    def _check_checkpoints(self, n: int) -> None:
        """Signatures, and roots against the rows' own leaves; root failures are explained afterwards."""
        good_sizes: list[int] = [0]
        for cp in _checkpoints():
            self.report.checkpoints_checked += 1
            label = f"checkpoint {cp.pk} (tree size {cp.tree_size}, {format_timestamp(cp.timestamp)})"
            key = self.keys.get(cp.key_id)
            if key is None:
                self.add(CHECKPOINT_CHANGED, f"{label}: signed by key {cp.key_id!r}, which is not registered")
                continue
            try:
                verified = verify_checkpoint(_checkpoint_dict(cp), key)
            except CheckpointError as exc:
                self.add(CHECKPOINT_CHANGED, f"{label}: {exc}")
                continue
            if cp.tree_size > n:
                self.add(REMOVED, f"{label} signed {cp.tree_size} entries but the ledger has only {n}: rows were "
                         "removed from the end (and the head rewound)", n)
            elif self.roots_at.get(cp.tree_size) != verified.root_hash:
                self.root_failures.append((cp, label))
            else:
                good_sizes.append(cp.tree_size)
        self.good_sizes = sorted(good_sizes)

    def _explain_root_failures(self) -> None:
        row_seqs = sorted({p.seq for p in self.report.problems if p.seq is not None and p.kind != NODE_CHANGED})
        for cp, label in self.root_failures:
            since = max((s for s in self.good_sizes if s < cp.tree_size), default=0)
            if any(since <= seq < cp.tree_size for seq in row_seqs):
                continue  # the row problems already reported are why this root differs
            # Every row matches its stored leaf, yet a signed checkpoint disagrees: rows and tree nodes
            # were rewritten together. Only the signature tells, and only down to this range.
            self.add(CHANGED, f"{label}: the rows in seq {since}..{cp.tree_size - 1} no longer hash to the "
                     "signed root, though they match the stored tree: rows and tree nodes were rewritten together",
                     since)

    def _covered_by_good_checkpoint(self, seq: int) -> bool:
        return any(size > seq for size in self.good_sizes)

    # --- explaining leaf mismatches ---------------------------------------------------------------------

    def _signed_at(self, row: _Row, seq: int) -> bool:
        other = self.mismatches.get(seq)
        if other is None:
            return False
        try:
            return merkle.leaf_hash(row.entry(self.glns, seq)) == other[1]
        except EntryError:
            return False

    def _classify_mismatches(self) -> None:
        seqs = sorted(self.mismatches)
        for seq in seqs:
            row, _stored = self.mismatches[seq]
            origin = next((j for j in seqs if j != seq and self._signed_at(row, j)), None)
            if origin is not None:
                other_row = self.mismatches[origin][0]
                if self._signed_at(other_row, seq):
                    self.add(REORDERED, f"the rows at seq {min(seq, origin)} and {max(seq, origin)} carry each "
                             f"other's entries (event {row.event_id} was appended as entry {origin})", seq)
                elif origin > seq:
                    self.add(REMOVED, f"this row was appended as entry {origin}: rows before it were removed and "
                             "later rows renumbered down", seq)
                else:
                    self.add(INSERTED, f"this row was appended as entry {origin}: rows were inserted before it and "
                             "later rows renumbered up", seq)
            elif seq + 1 in self.mismatches and self._signed_at(self.mismatches[seq + 1][0], seq):
                self.add(INSERTED, f"event {row.event_id} was never appended here; the rows after it were "
                         "renumbered up to make room", seq)
            elif self._covered_by_good_checkpoint(seq):
                self.add(NODE_CHANGED, "the row matches what a signed checkpoint covers, but its stored leaf was "
                         "changed", seq)
            else:
                self.add(CHANGED, f"the row's entry differs from its stored leaf (event {row.event_id}): a field "
                         "of the row was changed", seq)
        hidden = self.mismatch_count - len(self.mismatches)
        if hidden > 0:
            self.add(CHANGED, f"{hidden} more row(s) after these differ from their stored leaves", None)


def ledger_verify(*, chunk: int = CHUNK, bodies: bool = True) -> LedgerReport:
    """Verify the whole ledger in one consistent snapshot (captures may continue meanwhile)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            # SET TRANSACTION must be the transaction's first statement, so only when we opened it.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _Verifier(chunk, bodies).run()
