"""RFC 9162 hashing and proofs against the transparency-dev/merkle test vectors (tests/fixtures/ledger/README.md)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from provenance.ledger import merkle

from .support import FIXTURES

VECTORS = FIXTURES / "transparency-dev-merkle"
TABLES = json.loads((VECTORS / "go-test-tables.json").read_text())
LEAVES = [bytes.fromhex(h) for h in TABLES["leaves_hex"]]
ROOTS = [bytes.fromhex(h) for h in TABLES["roots_hex"]]

# Vectors whose expected outcome we deliberately differ from, and why.
STRICTER_THAN_UPSTREAM = {
    # Roots here are the 12-byte placeholder "don't care 2"; we refuse any root that is not a
    # 32-byte SHA-256, even when both sizes are equal and the proof is empty.
    "testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json",
}


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _vector_files(kind: str) -> list[Path]:
    return sorted((VECTORS / "testdata" / kind).rglob("*.json"))


def _vector_id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def _store_with_standard_leaves() -> merkle.MemoryNodeStore:
    store = merkle.MemoryNodeStore()
    merkle.append_leaves(store, 0, [merkle.leaf_hash(leaf) for leaf in LEAVES])
    return store


def test_it_hashes_leaves_and_nodes_as_rfc_6962_does() -> None:
    hasher = TABLES["hasher"]
    assert merkle.EMPTY_ROOT.hex() == hasher["empty_root_hex"]
    assert merkle.leaf_hash(b"").hex() == hasher["empty_leaf_hash_hex"]
    assert merkle.leaf_hash(b"L123456").hex() == hasher["leaf_L123456_hash_hex"]
    assert merkle.node_hash(b"N123", b"N456").hex() == hasher["node_N123_N456_hash_hex"]


def test_the_empty_tree_has_the_hash_of_the_empty_string_as_root() -> None:
    assert merkle.root_from_leaf_hashes([]) == merkle.EMPTY_ROOT
    assert merkle.root(merkle.MemoryNodeStore(), 0) == merkle.EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_it_computes_the_known_roots_of_the_standard_eight_leaves(size: int) -> None:
    leaf_hashes = [merkle.leaf_hash(leaf) for leaf in LEAVES[:size]]
    assert merkle.root_from_leaf_hashes(leaf_hashes) == ROOTS[size - 1]


@pytest.mark.parametrize("size", range(1, 9))
def test_the_store_gives_the_known_roots_for_every_past_size(size: int) -> None:
    assert merkle.root(_store_with_standard_leaves(), size) == ROOTS[size - 1]


@pytest.mark.parametrize("case", TABLES["inclusion_proofs"], ids=lambda c: f"{c['leaf_index']}-of-{c['tree_size']}")
def test_it_generates_the_known_inclusion_proofs(case: dict) -> None:
    proof = merkle.inclusion_proof(_store_with_standard_leaves(), case["leaf_index"], case["tree_size"])
    assert [p.hex() for p in proof] == case["proof_hex"]
    merkle.verify_inclusion(
        merkle.leaf_hash(LEAVES[case["leaf_index"]]),
        case["leaf_index"],
        case["tree_size"],
        proof,
        ROOTS[case["tree_size"] - 1],
    )


@pytest.mark.parametrize("case", TABLES["consistency_proofs"], ids=lambda c: f"{c['first']}-to-{c['second']}")
def test_it_generates_the_known_consistency_proofs(case: dict) -> None:
    proof = merkle.consistency_proof(_store_with_standard_leaves(), case["first"], case["second"])
    assert [p.hex() for p in proof] == case["proof_hex"]
    merkle.verify_consistency(case["first"], case["second"], ROOTS[case["first"] - 1], ROOTS[case["second"] - 1], proof)


@pytest.mark.parametrize("path", _vector_files("inclusion"), ids=_vector_id)
def test_inclusion_verification_agrees_with_the_upstream_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    index = v["leafIdx"] if "leafIdx" in v else v["leafIndex"]  # upstream renamed the field once
    args = (_b64(v["leafHash"]), index, v["treeSize"], [_b64(p) for p in v["proof"] or []], _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", _vector_files("consistency"), ids=_vector_id)
def test_consistency_verification_agrees_with_the_upstream_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    want_error = v["wantErr"] or _vector_id(path) in STRICTER_THAN_UPSTREAM
    args = (v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), [_b64(p) for p in v["proof"] or []])
    if want_error:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_the_vendored_vectors_are_all_there() -> None:
    # A guard against a fixture directory silently going missing and the parametrised tests vanishing with it.
    assert len(_vector_files("inclusion")) == 34
    assert len(_vector_files("consistency")) == 38
