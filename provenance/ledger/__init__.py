"""The verifiable ledger's core: no Django below this package, only the standard library and ``cryptography``.

- ``merkle``: RFC 9162 hashing, the append-only node store, inclusion/consistency proofs and their verifiers.
- ``entry``: the canonical bytes of one ledger entry (``provenance-ledger-entry/v1``) and RFC 8785 event hashing.
- ``checkpoint``: C2SP tlog-checkpoint notes signed with Ed25519, key loading.
- ``bundle`` / ``verify``: the exported proof bundle and its offline verifier (``python -m provenance.ledger.verify``).

The formats are specified in docs/ledger-format.md.
"""
