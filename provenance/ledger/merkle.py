"""RFC 9162 Merkle tree hashing, an append-only node store, proof generation and verification.

Hashing is RFC 9162 §2.1.1 (unchanged from RFC 6962): a leaf is SHA-256(0x00 ‖ entry), an interior
node SHA-256(0x01 ‖ left ‖ right), and a tree of n leaves splits at the largest power of two
strictly less than n. The two prefixes keep a leaf from ever being mistaken for a node.

Storage model. A *perfect subtree* of 2**level leaves starting at leaf ``index * 2**level`` is
named ``(level, index)``; level 0 is the leaf hashes. In an append-only log such a node never
changes once its last leaf exists, so it is written exactly once, when it completes. Every Merkle
tree hash of any prefix ``[0, n)`` (and of every range a proof needs) is a right-to-left fold of at
most ~2·log2(n) such nodes, which is why:

* appending a batch reads only the "compact range" of the old tree (≤ log2(n) nodes, one
  ``get_many`` call) and writes about two nodes per leaf;
* root, inclusion and consistency proofs for the current size *or any earlier size* need
  O(log n) node reads, again fetched with one ``get_many`` call.

The caller serialises appends (the ledger has one sequencer holding a lock); nothing here locks.
This module is pure Python (standard library only) so that auditors can reuse it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Protocol

HASH_SIZE = 32
NodeId = tuple[int, int]  # (level, index): the perfect subtree of 2**level leaves from leaf index * 2**level

EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: MTH({}) = SHA-256()

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryNodeStore",
    "MissingNodeError",
    "NodeId",
    "NodeStore",
    "ProofError",
    "append_leaves",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "root",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]


class ProofError(ValueError):
    """A proof, hash or tree size failed verification."""


class MissingNodeError(LookupError):
    """The store lacks a node a computation needs: the tree size asked for is beyond what was appended."""


# --- hashing ------------------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) straight from the definition; O(n), meant for small inputs and as a test oracle."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_from_leaf_hashes(leaf_hashes[:k]), root_from_leaf_hashes(leaf_hashes[k:]))


# --- node store -----------------------------------------------------------------------------------


class NodeStore(Protocol):
    """Where completed perfect-subtree hashes live (the Django side: a table ``(level, index, hash)``).

    Reads go through ``get_many`` so an SQL implementation can fetch every node a proof needs in a
    single query; it returns only the ids it has (missing ids are simply absent). ``put_many``
    receives nodes that are complete and therefore final: an implementation should refuse to
    overwrite an existing node with a different hash.
    """

    def get_many(self, ids: Collection[NodeId]) -> Mapping[NodeId, bytes]: ...

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None: ...


class MemoryNodeStore:
    """A dict-backed NodeStore for tests, tools and offline rebuilds. Counts reads so tests can pin O(log n)."""

    def __init__(self) -> None:
        self.nodes: dict[NodeId, bytes] = {}
        self.reads = 0  # number of node ids requested, summed over get_many calls
        self.read_calls = 0

    def get(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def get_many(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        self.read_calls += 1
        self.reads += len(ids)
        return {i: self.nodes[i] for i in ids if i in self.nodes}

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None:
        for node_id, value in nodes.items():
            existing = self.nodes.get(node_id)
            if existing is not None and existing != value:
                # A completed subtree is final; a different value means history is being rewritten.
                raise ValueError(f"node {node_id} already stored with a different hash")
            self.nodes[node_id] = value


def range_nodes(start: int, end: int) -> list[NodeId]:
    """The maximal perfect subtrees that exactly cover leaves [start, end), left to right.

    Folding their hashes right to left (``h = node_hash(left, h)``) gives the RFC 9162 hash of the
    range whenever ``start`` is a multiple of the largest power of two <= ``end - start`` — true for
    every prefix [0, n) and for every range that appears in an inclusion or consistency proof.
    """
    if not 0 <= start <= end:
        raise ValueError(f"bad range [{start}, {end})")
    nodes: list[NodeId] = []
    while start < end:
        # The largest aligned block at `start` that still fits in what remains.
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _fetch(store: NodeStore, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
    wanted = set(ids)
    if not wanted:
        return {}
    found = dict(store.get_many(wanted))
    missing = wanted - found.keys()
    if missing:
        raise MissingNodeError(f"node store lacks {len(missing)} node(s), e.g. {min(missing)}")
    return found


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes")


# --- appending ------------------------------------------------------------------------------------


def append_leaves(store: NodeStore, tree_size: int, new_leaf_hashes: Sequence[bytes]) -> bytes:
    """Append leaf hashes to a tree of ``tree_size`` leaves; store every subtree they complete; return the new root.

    Reads only the old tree's compact range (one ``get_many``) and writes everything in one
    ``put_many``, so a batch of b leaves costs O(log n) reads and about 2b writes.
    """
    if tree_size < 0:
        raise ValueError("tree_size must be >= 0")
    for i, h in enumerate(new_leaf_hashes):
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash {i} of the batch must be {HASH_SIZE} bytes")
    new_size = tree_size + len(new_leaf_hashes)
    if new_size == tree_size:
        return root(store, tree_size)

    known = _fetch(store, range_nodes(0, tree_size))
    new: dict[NodeId, bytes] = {(0, tree_size + i): bytes(h) for i, h in enumerate(new_leaf_hashes)}
    known.update(new)
    level = 1
    while (new_size >> level) > (tree_size >> level):
        # Nodes at this level that complete in this batch: their right edge passes tree_size.
        for index in range(tree_size >> level, new_size >> level):
            value = node_hash(known[(level - 1, 2 * index)], known[(level - 1, 2 * index + 1)])
            known[(level, index)] = value
            new[(level, index)] = value
        level += 1
    store.put_many(new)
    return _fold([known[n] for n in range_nodes(0, new_size)])


# --- reading ----------------------------------------------------------------------------------------


def root(store: NodeStore, tree_size: int) -> bytes:
    """The root of the tree at ``tree_size`` (current or past)."""
    if tree_size < 0:
        raise ValueError("tree_size must be >= 0")
    if tree_size == 0:
        return EMPTY_ROOT
    ids = range_nodes(0, tree_size)
    nodes = _fetch(store, ids)
    return _fold([nodes[i] for i in ids])


def _inclusion_ranges(leaf_index: int, tree_size: int) -> list[tuple[int, int]]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1 as leaf ranges, bottom-up."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        k = _split(hi - lo)
        if leaf_index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def _consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1 as leaf ranges, bottom-up."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, second
    whole_first_subtree = True  # the flag b: still on the path of a subtree the verifier already knows
    while hi != first:
        k = _split(hi - lo)
        if first - lo <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole_first_subtree = False
    if not whole_first_subtree:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _hashes_of_ranges(store: NodeStore, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    per_range = [range_nodes(a, b) for a, b in ranges]
    nodes = _fetch(store, (n for ids in per_range for n in ids))
    return [_fold([nodes[n] for n in ids]) for ids in per_range]


def inclusion_proof(store: NodeStore, leaf_index: int, tree_size: int) -> list[bytes]:
    """The audit path for ``leaf_index`` in the tree at ``tree_size`` (any size appended so far)."""
    if not 0 <= leaf_index < tree_size:
        raise ValueError(f"leaf index {leaf_index} is not in a tree of size {tree_size}")
    return _hashes_of_ranges(store, _inclusion_ranges(leaf_index, tree_size))


def consistency_proof(store: NodeStore, first: int, second: int) -> list[bytes]:
    """The proof that the tree at ``first`` is a prefix of the tree at ``second`` (0 < first <= second)."""
    if not 0 < first <= second:
        # A proof from the empty tree is meaningless (and RFC 9162 defines none).
        raise ValueError(f"need 0 < first <= second, got first={first}, second={second}")
    if first == second:
        return []
    return _hashes_of_ranges(store, _consistency_ranges(first, second))


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2, step by step) ---------------------------------


def _check_size(value: int, what: str) -> None:
    # bool is an int in Python; a True tree size is a bug upstream, not a size of 1.
    if type(value) is not int or value < 0:
        raise ProofError(f"{what} must be a non-negative integer")


def verify_inclusion(leaf_hash: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless ``proof`` puts the leaf at ``leaf_index`` in the tree (``tree_size``, ``root``)."""
    _check_size(leaf_index, "leaf index")
    _check_size(tree_size, "tree size")
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root hash")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof element {i}")
    if leaf_index >= tree_size:
        raise ProofError(f"leaf index {leaf_index} is not in a tree of size {tree_size}")

    fn, sn = leaf_index, tree_size - 1
    r = bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # On the right border: skip the levels where this node has no right sibling.
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """Raise ProofError unless ``proof`` shows the tree (first, first_root) is a prefix of (second, second_root)."""
    _check_size(first, "first tree size")
    _check_size(second, "second tree size")
    _check_hash(first_root, "first root hash")
    _check_hash(second_root, "second root hash")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof element {i}")
    if second < first:
        raise ProofError(f"second tree size {second} is smaller than first {first}")
    if first == 0:
        # Same choice as transparency-dev/merkle: every tree extends the empty one, so a "proof" says nothing.
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if first == second:
        if proof:
            raise ProofError("equal tree sizes need an empty proof")
        if first_root != second_root:
            raise ProofError("equal tree sizes but different roots")
        return
    if not proof:
        raise ProofError("consistency proof is empty")

    path = list(proof)
    if first & (first - 1) == 0:
        # The first tree is a perfect subtree of the second, so the verifier already holds its hash.
        path.insert(0, bytes(first_root))
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != first_root:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("consistency proof does not lead to the second root")
