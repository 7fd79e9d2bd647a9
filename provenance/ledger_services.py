"""Writes of the verifiable ledger beyond capture: the signing key and signed checkpoints.

A checkpoint states "the tree of the first N entries has root R", signed with the ledger's Ed25519
key in the C2SP tlog-checkpoint form (docs/ledger-format.md §3). Before signing a new one the
service proves, from its own stored nodes, that the tree it is about to sign extends the last
signed one (a consistency proof): a log that has been rewritten refuses to vouch for it.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from .ledger import merkle
from .ledger.checkpoint import (
    CheckpointError,
    KeyFormatError,
    generate_key,
    key_id,
    load_signing_key,
    private_key_b64,
    public_key_b64,
    sign_checkpoint,
)
from .ledger_store import consistency_proof, tree_root
from .models import Checkpoint, LedgerHead, SigningKey

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every process that issues checkpoints.
_CHECKPOINT_LOCK = 0x70726F76  # "prov"
_warned: set[str] = set()


class LedgerIntegrityError(RuntimeError):
    """The stored tree does not extend what was signed before: refuse to sign, run verify_ledger."""


def development_key_path() -> Path:
    return Path(settings.BASE_DIR) / "data" / "ledger-signing-key"


def _is_production() -> bool:
    return (getattr(settings, "DJANGO_ENV", None) or os.getenv("DJANGO_ENV", "dev")) == "production"


def _development_key() -> Ed25519PrivateKey:
    """A key generated once per checkout (demo, tests, development), kept in a 0600 file under data/."""
    path = development_key_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = load_signing_key(str(path))
    else:
        key = generate_key()
        with os.fdopen(fd, "w") as fh:
            fh.write(private_key_b64(key) + "\n")
    if str(path) not in _warned:  # once per process is enough to be seen, and not enough to drown the log
        _warned.add(str(path))
        logger.warning(
            "LEDGER_SIGNING_KEY is not set: checkpoints are signed with the development key in %s. "
            "Set LEDGER_SIGNING_KEY (docs/operations.md) anywhere checkpoints must mean something.",
            path,
        )
    return key


def ledger_signing_key() -> Ed25519PrivateKey:
    """The key that signs checkpoints: LEDGER_SIGNING_KEY, or a development key outside production."""
    value = settings.LEDGER_SIGNING_KEY
    if value:
        try:
            return load_signing_key(value)
        except (KeyFormatError, OSError) as exc:
            # KeyFormatError never repeats key material, so the message is safe to log.
            raise ImproperlyConfigured(f"LEDGER_SIGNING_KEY could not be loaded: {exc}") from None
    if _is_production():
        raise ImproperlyConfigured(
            "LEDGER_SIGNING_KEY must be set when DJANGO_ENV=production: a PEM file path, PEM text or base64 of "
            'the 32-byte Ed25519 seed. Generate one with: python -c "from provenance.ledger.checkpoint import '
            'generate_key, private_key_b64; print(private_key_b64(generate_key()))" (docs/operations.md).'
        )
    return _development_key()


def ledger_key_name() -> str:
    return settings.LEDGER_ORIGIN


def signing_key_register(*, key: Ed25519PrivateKey, name: str, now: datetime | None = None) -> SigningKey:
    """Publish the public half of the key in use; every other key is retired (its checkpoints stay valid)."""
    now = now or timezone.now()
    kid = key_id(name, key)
    public = public_key_b64(key)
    record, created = SigningKey.objects.get_or_create(
        key_id=kid, defaults={"name": name, "algorithm": "Ed25519", "public_key": public}
    )
    if not created and record.public_key != public:
        # Two keys whose 4-byte IDs collide under one name: refuse rather than publish an ambiguous key_id.
        raise ImproperlyConfigured(f"key_id {kid} is already registered for a different public key; rename the log")
    if record.retired_at is not None:  # a retired key brought back into use
        record.retired_at = None
        record.save(update_fields=["retired_at"])
    SigningKey.objects.exclude(key_id=kid).filter(retired_at__isnull=True).update(retired_at=now)
    return record


def _lock_checkpointing() -> None:
    # Two issuers (beat and a manual `checkpoint`) would otherwise both sign the same size. SQLite
    # transactions here are BEGIN IMMEDIATE, which already serialises them.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHECKPOINT_LOCK])


def _check_extends(previous: Checkpoint, tree_size: int, root: bytes) -> None:
    if previous.tree_size == 0:
        return
    if tree_size < previous.tree_size:
        raise LedgerIntegrityError(
            f"the ledger head says {tree_size} entries, but checkpoint {previous.pk} already signed "
            f"{previous.tree_size}; run `manage.py verify_ledger`"
        )
    try:
        merkle.verify_consistency(
            previous.tree_size,
            tree_size,
            bytes.fromhex(previous.root_hash),
            root,
            consistency_proof(previous.tree_size, tree_size),
        )
    except (merkle.ProofError, merkle.MissingNodeError, ValueError) as exc:
        raise LedgerIntegrityError(
            f"the stored tree of {tree_size} entries does not extend checkpoint {previous.pk} "
            f"(size {previous.tree_size}): {exc}; run `manage.py verify_ledger`"
        ) from None


def checkpoint_issue(*, force: bool = False, now: datetime | None = None) -> Checkpoint | None:
    """Sign the current tree head if the ledger grew (or the key changed) since the last checkpoint.

    Returns the new checkpoint, or None when there was nothing new to sign. ``force`` signs anyway.
    """
    key = ledger_signing_key()
    origin = settings.LEDGER_ORIGIN
    name = ledger_key_name()
    try:
        kid = key_id(name, key)
    except CheckpointError as exc:
        raise ImproperlyConfigured(f"LEDGER_ORIGIN {origin!r} cannot name a signing key: {exc}") from None
    now = now or timezone.now()
    with transaction.atomic():
        _lock_checkpointing()
        # The head and the nodes of its tree are written in one transaction and nodes never change,
        # so the size read here and the nodes read next describe one consistent tree.
        tree_size = LedgerHead.objects.filter(id=1).values_list("tree_size", flat=True).first() or 0
        previous = Checkpoint.objects.order_by("-tree_size", "-timestamp", "-id").first()
        grown = tree_size > (previous.tree_size if previous else 0)
        rotated = previous is not None and previous.key_id != kid
        if not (force or grown or rotated):
            return None
        root = tree_root(tree_size)
        if previous is not None:
            _check_extends(previous, tree_size, root)
        signing_key_register(key=key, name=name, now=now)
        signed = sign_checkpoint(origin, tree_size, root, key, name, timestamp=now)
        return Checkpoint.objects.create(
            tree_size=signed.tree_size,
            root_hash=signed.root_hash,
            timestamp=now,
            key_id=signed.key_id,
            signature=signed.signature,
            note=signed.note,
        )
