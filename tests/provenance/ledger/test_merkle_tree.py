"""The append-only node store, proof generation for current and past sizes, and rejection of bad proofs."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest

from provenance.ledger import merkle

N = 70  # enough to cover every shape of tree up to a 7-level one, including sizes just past a power of two
LEAVES = [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(N)]
ORACLE_ROOTS = [merkle.root_from_leaf_hashes(LEAVES[:n]) for n in range(N + 1)]


def _reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) straight from RFC 9162 §2.1.3.1, independent of the store."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*_reference_path(m, leaves[:k]), merkle.root_from_leaf_hashes(leaves[k:])]
    return [*_reference_path(m - k, leaves[k:]), merkle.root_from_leaf_hashes(leaves[:k])]


def _reference_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) from RFC 9162 §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if whole else [merkle.root_from_leaf_hashes(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_reference_subproof(m, leaves[:k], whole), merkle.root_from_leaf_hashes(leaves[k:])]
    return [*_reference_subproof(m - k, leaves[k:], False), merkle.root_from_leaf_hashes(leaves[:k])]


@pytest.fixture(scope="module")
def full_store() -> merkle.MemoryNodeStore:
    store = merkle.MemoryNodeStore()
    merkle.append_leaves(store, 0, LEAVES)
    return store


def test_appending_in_random_batches_gives_the_rfc_root_after_every_batch() -> None:
    rng = random.Random(9162)
    store = merkle.MemoryNodeStore()
    size = 0
    while size < N:
        batch = LEAVES[size : size + rng.randint(1, 9)]
        assert merkle.append_leaves(store, size, batch) == ORACLE_ROOTS[size + len(batch)]
        size += len(batch)


def test_one_at_a_time_and_all_at_once_store_the_same_nodes() -> None:
    one_by_one, at_once = merkle.MemoryNodeStore(), merkle.MemoryNodeStore()
    for i, leaf in enumerate(LEAVES):
        merkle.append_leaves(one_by_one, i, [leaf])
    merkle.append_leaves(at_once, 0, LEAVES)
    assert one_by_one.nodes == at_once.nodes


def test_it_stores_only_completed_perfect_subtrees(full_store: merkle.MemoryNodeStore) -> None:
    # Every leaf plus one node per completed pair, quad, ...: n + floor(n/2) + floor(n/4) + ...
    assert len(full_store.nodes) == sum(N >> level for level in range(N.bit_length()))
    for (level, index), value in full_store.nodes.items():
        start, end = index << level, (index + 1) << level
        assert end <= N
        assert value == merkle.root_from_leaf_hashes(LEAVES[start:end])


def test_appending_nothing_returns_the_current_root(full_store: merkle.MemoryNodeStore) -> None:
    assert merkle.append_leaves(full_store, N, []) == ORACLE_ROOTS[N]


def test_a_batch_reads_only_the_compact_range_of_the_old_tree() -> None:
    store = merkle.MemoryNodeStore()
    merkle.append_leaves(store, 0, LEAVES[:63])
    store.reads = store.read_calls = 0
    merkle.append_leaves(store, 63, LEAVES[63:])
    assert store.read_calls == 1
    assert store.reads == 6  # 63 = 32 + 16 + 8 + 4 + 2 + 1


def test_the_store_refuses_to_rewrite_a_completed_node(full_store: merkle.MemoryNodeStore) -> None:
    copy = merkle.MemoryNodeStore()
    copy.nodes = dict(full_store.nodes)
    with pytest.raises(ValueError, match="different hash"):
        merkle.append_leaves(copy, 3, [LEAVES[0]])  # pretends the tree had 3 leaves: leaf 3 already exists


def test_it_refuses_leaf_hashes_that_are_not_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        merkle.append_leaves(merkle.MemoryNodeStore(), 0, [b"short"])


def test_asking_beyond_what_was_appended_is_an_error(full_store: merkle.MemoryNodeStore) -> None:
    with pytest.raises(merkle.MissingNodeError):
        merkle.root(full_store, N + 1)
    with pytest.raises(merkle.MissingNodeError):
        merkle.inclusion_proof(full_store, 0, N + 2)


def test_it_refuses_to_prove_impossible_things(full_store: merkle.MemoryNodeStore) -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_proof(full_store, 5, 5)
    with pytest.raises(ValueError):
        merkle.consistency_proof(full_store, 0, 5)
    with pytest.raises(ValueError):
        merkle.consistency_proof(full_store, 6, 5)


@pytest.mark.parametrize("tree_size", range(1, N + 1))
def test_inclusion_proofs_for_every_leaf_of_every_past_size_match_the_rfc_and_verify(
    full_store: merkle.MemoryNodeStore, tree_size: int
) -> None:
    for m in range(tree_size):
        proof = merkle.inclusion_proof(full_store, m, tree_size)
        assert proof == _reference_path(m, LEAVES[:tree_size])
        merkle.verify_inclusion(LEAVES[m], m, tree_size, proof, ORACLE_ROOTS[tree_size])


@pytest.mark.parametrize("second", range(1, N + 1))
def test_consistency_proofs_between_every_pair_of_past_sizes_match_the_rfc_and_verify(
    full_store: merkle.MemoryNodeStore, second: int
) -> None:
    for first in range(1, second + 1):
        proof = merkle.consistency_proof(full_store, first, second)
        assert proof == _reference_subproof(first, LEAVES[:second], True)
        merkle.verify_consistency(first, second, ORACLE_ROOTS[first], ORACLE_ROOTS[second], proof)


def test_a_proof_needs_logarithmically_many_reads_in_one_call(full_store: merkle.MemoryNodeStore) -> None:
    for tree_size in (17, 33, 64, N):
        for m in (0, tree_size // 2, tree_size - 1):
            full_store.reads = full_store.read_calls = 0
            merkle.inclusion_proof(full_store, m, tree_size)
            assert full_store.read_calls == 1
            assert full_store.reads <= 2 * tree_size.bit_length()


# --- corrupted proofs ------------------------------------------------------------------------------

SAMPLE = [
    (m, n) for n in (2, 3, 5, 7, 8, 9, 16, 17, 31, 33, 64, 70) for m in sorted({0, 1, n // 2, n - 2, n - 1}) if m < n
]


def _flip(h: bytes, bit: int) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def _inclusion(full_store: merkle.MemoryNodeStore, m: int, n: int) -> list[bytes]:
    return merkle.inclusion_proof(full_store, m, n)


@pytest.mark.parametrize(("m", "n"), SAMPLE)
def test_it_rejects_an_inclusion_proof_with_a_flipped_bit(full_store: merkle.MemoryNodeStore, m: int, n: int) -> None:
    proof = _inclusion(full_store, m, n)
    for i in range(len(proof)):
        for bit in (0, 7):
            bad = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(LEAVES[m], m, n, bad, ORACLE_ROOTS[n])
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(_flip(LEAVES[m], 3), m, n, proof, ORACLE_ROOTS[n])
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(LEAVES[m], m, n, proof, _flip(ORACLE_ROOTS[n], 3))


@pytest.mark.parametrize(("m", "n"), SAMPLE)
def test_it_rejects_an_inclusion_proof_for_the_wrong_index(full_store: merkle.MemoryNodeStore, m: int, n: int) -> None:
    proof = _inclusion(full_store, m, n)
    for wrong in {m - 1, m + 1, m ^ 2, n, -1}:
        if wrong == m:
            continue
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(LEAVES[m], wrong, n, proof, ORACLE_ROOTS[n])


@pytest.mark.parametrize(("m", "n"), SAMPLE)
def test_it_rejects_an_inclusion_proof_checked_against_another_tree_size(
    full_store: merkle.MemoryNodeStore, m: int, n: int
) -> None:
    proof = _inclusion(full_store, m, n)
    for wrong in {n - 1, n + 1, n * 2, n // 2}:
        if 0 < wrong <= N and wrong != n:
            # The claimed size comes with that size's genuine root: the proof still must not fit.
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(LEAVES[m], m, wrong, proof, ORACLE_ROOTS[wrong])


@pytest.mark.parametrize(("m", "n"), SAMPLE)
def test_it_rejects_a_truncated_or_extended_inclusion_proof(full_store: merkle.MemoryNodeStore, m: int, n: int) -> None:
    proof = _inclusion(full_store, m, n)
    variants: list[list[bytes]] = [[*proof, ORACLE_ROOTS[n]], [ORACLE_ROOTS[n], *proof], [*proof, LEAVES[m]]]
    if proof:
        variants += [proof[:-1], proof[1:]]
    for bad in variants:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(LEAVES[m], m, n, bad, ORACLE_ROOTS[n])


@pytest.mark.parametrize(("m", "n"), [(m, n) for m, n in SAMPLE if n > 2])
def test_it_rejects_an_inclusion_proof_with_swapped_siblings(
    full_store: merkle.MemoryNodeStore, m: int, n: int
) -> None:
    proof = _inclusion(full_store, m, n)
    for i in range(len(proof) - 1):
        bad = [*proof[:i], proof[i + 1], proof[i], *proof[i + 2 :]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(LEAVES[m], m, n, bad, ORACLE_ROOTS[n])


def test_it_rejects_malformed_inclusion_inputs() -> None:
    root, leaf = ORACLE_ROOTS[1], LEAVES[0]
    bad_calls: list[Callable[[], None]] = [
        lambda: merkle.verify_inclusion(leaf, True, 1, [], root),  # type: ignore[arg-type]
        lambda: merkle.verify_inclusion(leaf, 0, 0, [], merkle.EMPTY_ROOT),
        lambda: merkle.verify_inclusion(leaf[:31], 0, 1, [], root),
        lambda: merkle.verify_inclusion(leaf, 0, 1, [], root + b"\x00"),
        lambda: merkle.verify_inclusion(leaf, 0, 1, [b""], root),
    ]
    for call in bad_calls:
        with pytest.raises(merkle.ProofError):
            call()


CONSISTENCY_SAMPLE = [(f, s) for s in (2, 3, 5, 8, 9, 17, 33, 70) for f in sorted({1, 2, s // 2, s - 1}) if 0 < f < s]


@pytest.mark.parametrize(("first", "second"), CONSISTENCY_SAMPLE)
def test_it_rejects_a_consistency_proof_with_a_flipped_bit(
    full_store: merkle.MemoryNodeStore, first: int, second: int
) -> None:
    proof = merkle.consistency_proof(full_store, first, second)
    for i in range(len(proof)):
        bad = [*proof[:i], _flip(proof[i], 4), *proof[i + 1 :]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(first, second, ORACLE_ROOTS[first], ORACLE_ROOTS[second], bad)


@pytest.mark.parametrize(("first", "second"), CONSISTENCY_SAMPLE)
def test_it_rejects_a_consistency_proof_for_other_sizes_or_roots(
    full_store: merkle.MemoryNodeStore, first: int, second: int
) -> None:
    proof = merkle.consistency_proof(full_store, first, second)
    r1, r2 = ORACLE_ROOTS[first], ORACLE_ROOTS[second]
    for f, s in {(first - 1, second), (first + 1, second), (first, second + 1), (first, second - 1)}:
        if 0 < f <= s <= N and (f, s) != (first, second):
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(f, s, ORACLE_ROOTS[f], ORACLE_ROOTS[s], proof)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first, second, r2, r1, proof)  # swapped roots
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first, second, _flip(r1, 0), r2, proof)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first, second, r1, _flip(r2, 0), proof)


@pytest.mark.parametrize(("first", "second"), CONSISTENCY_SAMPLE)
def test_it_rejects_a_truncated_extended_or_reordered_consistency_proof(
    full_store: merkle.MemoryNodeStore, first: int, second: int
) -> None:
    proof = merkle.consistency_proof(full_store, first, second)
    r1, r2 = ORACLE_ROOTS[first], ORACLE_ROOTS[second]
    variants = [[], proof[:-1], proof[1:], [*proof, r1], [*proof, r2], [r1, *proof], [proof[0], *proof]]
    variants += [[*proof[:i], proof[i + 1], proof[i], *proof[i + 2 :]] for i in range(len(proof) - 1)]
    for bad in variants:
        if bad == proof:
            continue
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(first, second, r1, r2, bad)


def test_it_rejects_consistency_from_the_empty_tree_or_backwards() -> None:
    with pytest.raises(merkle.ProofError, match="empty tree"):
        merkle.verify_consistency(0, 3, merkle.EMPTY_ROOT, ORACLE_ROOTS[3], [])
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(3, 2, ORACLE_ROOTS[3], ORACLE_ROOTS[2], [])


def test_equal_sizes_are_consistent_only_with_equal_roots_and_no_proof() -> None:
    merkle.verify_consistency(5, 5, ORACLE_ROOTS[5], ORACLE_ROOTS[5], [])
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(5, 5, ORACLE_ROOTS[5], ORACLE_ROOTS[4], [])
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(5, 5, ORACLE_ROOTS[5], ORACLE_ROOTS[5], [ORACLE_ROOTS[5]])


def test_range_nodes_cover_a_range_with_maximal_aligned_subtrees() -> None:
    assert merkle.range_nodes(0, 0) == []
    assert merkle.range_nodes(0, 70) == [(6, 0), (2, 16), (1, 34)]
    assert merkle.range_nodes(6, 8) == [(1, 3)]
    assert merkle.range_nodes(4, 6) == [(1, 2)]
    with pytest.raises(ValueError):
        merkle.range_nodes(5, 4)
