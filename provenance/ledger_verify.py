"""Full verification of the stored ledger against itself and against every signed checkpoint.

Streams the ledger rows and the stored leaves in sequence order, a chunk at a time (never all rows
in memory), and checks that:

* sequence numbers run 0..n-1 without gaps or duplicates, n being the ledger head's tree size;
* every row's entry (docs/ledger-format.md §1) hashes to the leaf stored for its seq;
* every stored interior node equals the one recomputed from the rows (so every proof served is sound);
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
from typing import Any

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

    def push(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf; return the perfect subtrees it completes, as (level, index, hash), bottom-up."""
        level, value, index = 0, leaf, self.size
        stack = self._stack
        completed = []
        while stack and stack[-1][0] == level:
            value = merkle.node_hash(stack.pop()[1], value)
            level += 1
            index >>= 1
            completed.append((level, index, value))
        stack.append((level, value))
        self.size += 1
        return completed

    def root(self) -> bytes:
        if not self._stack:
            return merkle.EMPTY_ROOT
        value = self._stack[-1][1]
        for _level, left in reversed(self._stack[:-1]):
            value = merkle.node_hash(left, value)
        return value


_ROW_COLUMNS = ("seq", "record_time", "event_id", "event_hash", "body_sha256", "submitter_id")


def _rows(start: int, end: int, *, bodies: bool) -> dict[int, list[tuple[Any, ...]]]:
    by_seq: dict[int, list[tuple[Any, ...]]] = {}
    columns = _ROW_COLUMNS + (("body",) if bodies else ())
    qs = CustodyEvent.objects.filter(seq__gte=start, seq__lt=end).order_by("seq", "record_time")
    for values in qs.values_list(*columns):
        by_seq.setdefault(values[0], []).append(values)
    return by_seq


def _stored_nodes(start: int, end: int) -> tuple[dict[int, bytes], dict[tuple[int, int], bytes]]:
    """The stored leaves [start, end) and the interior nodes that leaves in that range complete."""
    table = connection.ops.quote_name(MerkleNode._meta.db_table)
    terms, params = ['(level = 0 AND "index" >= %s AND "index" < %s)'], [start, end]
    level = 1
    while (end >> level) > 0:
        # Node (level, i) completes with leaf (i + 1) * 2**level - 1; those falling in [start, end):
        low, high = ((start + (1 << level)) >> level) - 1, (end >> level) - 1
        if low <= high:
            terms.append('(level = %s AND "index" BETWEEN %s AND %s)')
            params += [level, low, high]
        level += 1
    leaves: dict[int, bytes] = {}
    interior: dict[tuple[int, int], bytes] = {}
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT level, "index", hash FROM {table} WHERE {" OR ".join(terms)}', params)  # noqa: S608
        for node_level, index, value in cursor.fetchall():
            if node_level == 0:
                leaves[index] = bytes(value)
            else:
                interior[(node_level, index)] = bytes(value)
    return leaves, interior


def _body_digest(body: object) -> str | None:
    try:
        return event_sha256(body)  # type: ignore[arg-type]
    except EntryError:
        return None


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
        self.flagged_leaves: set[int] = set()  # leaves found wrong: the nodes above them are wrong because of them
        self.interior_reported = False
        self.roots_at: dict[int, bytes] = {}  # recomputed roots at every checkpointed size
        self.root_failures: list[tuple[Checkpoint, str]] = []  # checkpoints whose root the rows do not give
        self.good_sizes: list[int] = [0]

    def add(self, kind: str, detail: str, seq: int | None = None) -> None:
        self.report.problems.append(LedgerProblem(kind, detail, seq))

    def run(self) -> LedgerReport:
        started = time.perf_counter()
        n = LedgerHead.objects.filter(id=1).values_list("tree_size", flat=True).first() or 0
        self.report.tree_size = n
        checkpoint_sizes = set(Checkpoint.objects.order_by().values_list("tree_size", flat=True).distinct())
        self._walk_leaves(n, checkpoint_sizes)
        self._check_beyond_head(n)
        self._check_stored_root(n)
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
            stored, interior = _stored_nodes(start, end)
            self.report.nodes_checked += len(stored) + len(interior)
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
                for level, index, value in builder.push(leaf):
                    if interior.get((level, index)) != value:
                        self._interior_mismatch(level, index)
                if builder.size in checkpoint_sizes:
                    self.roots_at[builder.size] = builder.root()
        if gap_start is not None:
            self._gap(gap_start, n)
        self.final_root = builder.root()

    def _interior_mismatch(self, level: int, index: int) -> None:
        # A node above a leaf already found wrong differs because of it; only an unexplained one is news.
        if self.interior_reported:
            return
        first_leaf, past_leaf = index << level, (index + 1) << level
        if any(first_leaf <= seq < past_leaf for seq in self.flagged_leaves):
            return
        self.interior_reported = True
        self.add(
            NODE_CHANGED,
            f"stored node (level {level}, index {index}) is missing or differs from the hash of "
            "the rows beneath it; proofs through it would fail",
            first_leaf,
        )

    def _gap(self, start: int, end: int) -> None:
        span = f"seq {start}" if end == start + 1 else f"seq {start}..{end - 1}"
        self.add(REMOVED, f"no row for {span}, though the tree has leaves for them (a gap in the sequence)", start)

    def _check_row(self, seq: int, candidates: list[tuple[Any, ...]], leaf_stored: bytes | None) -> bytes:
        self.report.rows_checked += len(candidates)
        glns = self.glns
        leaves = []
        for values in candidates:
            if self.bodies and _body_digest(values[6]) != values[4]:
                self.flagged_leaves.add(seq)
                self.add(
                    CHANGED,
                    f"the stored event (body) of {values[2]} no longer hashes to the "
                    "received_sha256 in its entry: the event's content was changed",
                    seq,
                )
            try:
                entry = encode_entry(
                    seq=seq,
                    event_id=values[2],
                    event_hash=values[3],
                    record_time=values[1],
                    submitter=glns.get(values[5], "?"),
                    received_sha256=values[4],
                )
                leaves.append(merkle.leaf_hash(entry))
            except EntryError as exc:
                self.add(CHANGED, f"the row no longer forms a valid entry: {exc}", seq)
                leaves.append(bytes(merkle.HASH_SIZE))
        if len(candidates) > 1:
            self.flagged_leaves.add(seq)
            self.add(INSERTED, f"{len(candidates)} rows carry this sequence number (a duplicate seq was inserted)", seq)
            genuine = [i for i, leaf in enumerate(leaves) if leaf == leaf_stored]
            return leaves[genuine[0]] if genuine else leaves[0]
        leaf = leaves[0]
        if leaf_stored is None:
            self.flagged_leaves.add(seq)
            self.add(NODE_CHANGED, "the tree has no stored leaf for this row", seq)
        elif leaf != leaf_stored:
            self.flagged_leaves.add(seq)
            self.mismatch_count += 1
            if len(self.mismatches) < _KEPT_MISMATCHES:
                self.mismatches[seq] = (_Row(*candidates[0][:6]), leaf_stored)
        return leaf

    def _check_beyond_head(self, n: int) -> None:
        extra = CustodyEvent.objects.filter(Q(seq__gte=n) | Q(seq__lt=0))
        first = extra.order_by("seq").values_list("seq", flat=True).first()
        if first is not None:
            count = extra.count()
            self.add(
                INSERTED,
                f"{count} row(s) from seq {first} on lie outside the tree of {n} entries "
                "(rows the sequencer never appended)",
                first,
            )
        leaf_beyond = (
            MerkleNode.objects.filter(level=0, index__gte=n).order_by("index").values_list("index", flat=True).first()
        )
        if leaf_beyond is not None:
            self.add(
                NODE_CHANGED,
                f"the tree stores leaves from index {leaf_beyond} on, beyond the head's {n} "
                "entries (the head was rewound?)",
                leaf_beyond,
            )

    # --- the stored tree beyond what the walk saw ---------------------------------------------------

    def _check_stored_root(self, n: int) -> None:
        table = connection.ops.quote_name(MerkleNode._meta.db_table)
        with connection.cursor() as cursor:
            # Every node of a tree of n leaves has index < n >> level; anything else was added or kept wrongly.
            cursor.execute(
                f'SELECT level, "index" FROM {table} WHERE level > 0 AND "index" >= (%s >> level) '  # noqa: S608
                'ORDER BY "index" * (1 << level) LIMIT 1',
                [n],
            )
            beyond = cursor.fetchone()
        if beyond is not None:
            level, index = beyond
            self.add(
                NODE_CHANGED,
                f"the tree stores node (level {level}, index {index}), beyond a tree of {n} "
                "entries (the head was rewound?)",
                index << level,
            )
        stored_root = self._stored_root(n)
        if stored_root is not None and stored_root != self.final_root and not self.flagged_leaves:
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
                self.add(
                    REMOVED,
                    f"{label} signed {cp.tree_size} entries but the ledger has only {n}: rows were "
                    "removed from the end (and the head rewound)",
                    n,
                )
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
            self.add(
                CHANGED,
                f"{label}: the rows in seq {since}..{cp.tree_size - 1} no longer hash to the "
                "signed root, though they match the stored tree: rows and tree nodes were rewritten together",
                since,
            )

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
                    self.add(
                        REORDERED,
                        f"the rows at seq {min(seq, origin)} and {max(seq, origin)} carry each "
                        f"other's entries (event {row.event_id} was appended as entry {origin})",
                        seq,
                    )
                elif origin > seq:
                    self.add(
                        REMOVED,
                        f"this row was appended as entry {origin}: rows before it were removed and "
                        "later rows renumbered down",
                        seq,
                    )
                else:
                    self.add(
                        INSERTED,
                        f"this row was appended as entry {origin}: rows were inserted before it and "
                        "later rows renumbered up",
                        seq,
                    )
            elif seq + 1 in self.mismatches and self._signed_at(self.mismatches[seq + 1][0], seq):
                self.add(
                    INSERTED,
                    f"event {row.event_id} was never appended here; the rows after it were renumbered up to make room",
                    seq,
                )
            elif self._covered_by_good_checkpoint(seq):
                self.add(
                    NODE_CHANGED,
                    "the row matches what a signed checkpoint covers, but its stored leaf was changed",
                    seq,
                )
            else:
                self.add(
                    CHANGED,
                    f"the row's entry differs from its stored leaf (event {row.event_id}): a field "
                    "of the row was changed",
                    seq,
                )
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
