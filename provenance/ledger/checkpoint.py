"""Signed checkpoints: C2SP tlog-checkpoint notes signed with Ed25519 (C2SP signed-note).

The signed text ("note") is exactly::

    <origin>\\n<tree size, decimal>\\n<base64 of the 32-byte root hash>\\n

and the signature is Ed25519 over its UTF-8 bytes. Two wire forms carry it:

* JSON (``Checkpoint.to_dict``, the API's ``/api/ledger/checkpoints/latest``)::

      {"tree_size": int, "root_hash": hex, "timestamp": RFC 3339, "key_id": str,
       "signature": base64 of the 64-byte signature, "note": str}

* the signed-note text for witnesses and Go tooling (``Checkpoint.signed_note``)::

      <note>\\n— <key name> base64(4-byte key ID ‖ 64-byte signature)\\n

Key IDs follow C2SP signed-note: the first 4 bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public
key). ``key_id`` strings are ``<key name>+<those 4 bytes as 8 lowercase hex>``, the same prefix
as a Go ``golang.org/x/mod/sumdb/note`` verifier key (``verifier_key`` returns the whole one), so
the key name needed for the signature line travels with the JSON form.

``timestamp`` is when the checkpoint was issued. It is *not* inside the signed note (the note is
the standard three lines so that any tlog-checkpoint client can read it); treat it as
information, not as signed evidence of time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519_SIGNATURE_TYPE = 0x01  # C2SP signed-note signature type byte for Ed25519
EM_DASH = "\u2014"

_KEY_NAME = re.compile(r"[^\s+]+")  # signed-note: non-empty, no Unicode spaces, no '+'
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID = re.compile(r"(?P<name>[^\s+]+)\+(?P<hex>[0-9a-f]{8})")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NOTE_FORBIDDEN = re.compile(r"[\x00-\x09\x0b-\x1f]")  # signed-note: no ASCII controls but newline

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "KeyFormatError",
    "VerifiedCheckpoint",
    "format_timestamp",
    "generate_key",
    "key_id",
    "key_record",
    "load_signing_key",
    "open_signed_note",
    "parse_note",
    "private_key_b64",
    "public_key_b64",
    "public_key_bytes",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
    "verify_checkpoint",
    "verify_signed_note",
]


class CheckpointError(ValueError):
    """A checkpoint is malformed or its signature does not verify."""


class KeyFormatError(ValueError):
    """A signing key could not be loaded. The message never repeats the key material."""


# --- keys -----------------------------------------------------------------------------------------


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    return base64.b64encode(public_key_bytes(key)).decode("ascii")


def private_key_b64(key: Ed25519PrivateKey) -> str:
    """The 32-byte seed in base64: one of the forms ``LEDGER_SIGNING_KEY`` accepts."""
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.b64encode(raw).decode("ascii")


def _key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise KeyFormatError("PEM data is not an unencrypted private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError("PEM key is not an Ed25519 key")
    return key


def _key_from_b64(text: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("key is neither PEM nor base64") from None
    if len(raw) != 32:
        raise KeyFormatError(f"base64 key must decode to 32 bytes, got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def _key_from_go_signer(value: str) -> Ed25519PrivateKey:
    # golang.org/x/mod/sumdb/note signer key: PRIVATE+KEY+<name>+<8 hex>+base64(0x01 ‖ 32-byte seed)
    parts = value.split("+", 4)
    if len(parts) != 5:
        raise KeyFormatError("malformed PRIVATE+KEY+ signer key")
    name, hash_hex, encoded = parts[2], parts[3], parts[4]
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("malformed PRIVATE+KEY+ signer key") from None
    if len(raw) != 33 or raw[0] != ED25519_SIGNATURE_TYPE:
        raise KeyFormatError("PRIVATE+KEY+ signer key is not an Ed25519 key")
    key = Ed25519PrivateKey.from_private_bytes(raw[1:])
    if _key_id_bytes(name, public_key_bytes(key)).hex() != hash_hex:
        raise KeyFormatError("PRIVATE+KEY+ signer key has a key hash that does not match its key")
    return key


def load_signing_key(value_or_path: str) -> Ed25519PrivateKey:
    """Load ``LEDGER_SIGNING_KEY``: a PEM file path, PEM text, base64 of the 32-byte seed, or a Go note signer key."""
    value = value_or_path.strip()
    if not value:
        raise KeyFormatError("no signing key given")
    if value.startswith("-----BEGIN"):
        return _key_from_pem(value.encode("ascii", "replace"))
    if value.startswith("PRIVATE+KEY+"):
        return _key_from_go_signer(value)
    # A 44-character base64 seed could in theory also be a file name; a file that exists wins.
    if os.path.isfile(value):
        with open(value, "rb") as fh:
            data = fh.read()
        if b"-----BEGIN" in data:
            return _key_from_pem(data)
        try:
            return _key_from_b64(data.decode("ascii"))
        except UnicodeDecodeError:
            raise KeyFormatError(f"key file {value} is neither PEM nor base64") from None
    return _key_from_b64(value)


def _key_id_bytes(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519_SIGNATURE_TYPE]) + public_key).digest()[:4]


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not _KEY_NAME.fullmatch(name):
        raise CheckpointError("key name must be non-empty without spaces or '+'")


def key_id(key_name: str, public_key: bytes | Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """``<key name>+<8 hex>``: the C2SP signed-note key ID with the name it was derived from."""
    _check_key_name(key_name)
    raw = public_key if isinstance(public_key, bytes) else public_key_bytes(public_key)
    if len(raw) != 32:
        raise CheckpointError("an Ed25519 public key is 32 bytes")
    return f"{key_name}+{_key_id_bytes(key_name, raw).hex()}"


def verifier_key(key_name: str, key: Ed25519PrivateKey | Ed25519PublicKey | bytes) -> str:
    """The Go sumdb/note verifier key ``<name>+<8 hex>+base64(0x01 ‖ public key)`` for witnesses."""
    raw = key if isinstance(key, bytes) else public_key_bytes(key)
    encoded = base64.b64encode(bytes([ED25519_SIGNATURE_TYPE]) + raw).decode("ascii")
    return f"{key_id(key_name, raw)}+{encoded}"


def key_record(key_name: str, key: Ed25519PrivateKey | Ed25519PublicKey) -> dict[str, str]:
    """One element of ``GET /api/ledger/keys`` and of a bundle's ``keys``."""
    return {"key_id": key_id(key_name, key), "algorithm": "Ed25519", "public_key": public_key_b64(key)}


# --- notes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedCheckpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    key_name: str
    timestamp: datetime | None = None


def _note_text(origin: str, tree_size: int, root_hash: bytes) -> str:
    return f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode('ascii')}\n"


def parse_note(note: str) -> tuple[str, int, bytes]:
    """Parse a tlog-checkpoint note into (origin, tree size, root hash); extension lines are allowed and ignored."""
    if not isinstance(note, str) or not note.endswith("\n"):
        raise CheckpointError("note must be text ending in a newline")
    if _NOTE_FORBIDDEN.search(note):
        raise CheckpointError("note must not contain control characters other than newline")
    lines = note[:-1].split("\n")
    if len(lines) < 3 or any(line == "" for line in lines):
        raise CheckpointError("note needs origin, tree size and root hash on non-empty lines")
    origin, size_text, root_text = lines[:3]
    if not _TREE_SIZE.fullmatch(size_text):
        raise CheckpointError("tree size line must be decimal without leading zeros")
    try:
        root_hash = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError("root hash line is not base64") from None
    if len(root_hash) != 32 or base64.b64encode(root_hash).decode("ascii") != root_text:
        raise CheckpointError("root hash line must be the canonical base64 of 32 bytes")
    return origin, int(size_text), root_hash


def _verify_signature(public_key: bytes, signature: bytes, message: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        raise CheckpointError("signature does not verify") from None
    except ValueError:
        raise CheckpointError("public key is not a 32-byte Ed25519 key") from None


# --- checkpoints ------------------------------------------------------------------------------------


def format_timestamp(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise CheckpointError("timestamp must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root_hash: str  # hex
    timestamp: str  # RFC 3339, UTC
    key_id: str  # <key name>+<8 hex>
    signature: str  # base64 of the 64-byte Ed25519 signature over note
    note: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def key_name(self) -> str:
        return self.key_id.rsplit("+", 1)[0]

    def signed_note(self) -> str:
        """The C2SP signed-note text: note, blank line, one signature line."""
        key_hash = bytes.fromhex(self.key_id.rsplit("+", 1)[1])
        return _signed_note_text(self.note, self.key_name, key_hash, base64.b64decode(self.signature))


def sign_checkpoint(
    origin: str,
    tree_size: int,
    root: bytes,
    private_key: Ed25519PrivateKey,
    key_name: str | None = None,
    *,
    timestamp: datetime | None = None,
) -> Checkpoint:
    """Sign the tree head. ``key_name`` defaults to the origin, as tlog-checkpoint recommends."""
    name = origin if key_name is None else key_name
    _check_key_name(name)
    if not origin or re.search(r"[\x00-\x1f\x7f]", origin):
        raise CheckpointError("origin must be one non-empty line")
    if type(tree_size) is not int or tree_size < 0:
        raise CheckpointError("tree_size must be a non-negative integer")
    if len(root) != 32:
        raise CheckpointError("root hash must be 32 bytes")
    note = _note_text(origin, tree_size, bytes(root))
    signature = private_key.sign(note.encode("utf-8"))
    return Checkpoint(
        tree_size=tree_size,
        root_hash=bytes(root).hex(),
        timestamp=format_timestamp(timestamp or datetime.now(UTC)),
        key_id=key_id(name, private_key),
        signature=base64.b64encode(signature).decode("ascii"),
        note=note,
    )


def _str_field(data: Mapping[str, object], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise CheckpointError(f"checkpoint field {name!r} is missing or not a string")
    return value


def _int_field(data: Mapping[str, object], name: str) -> int:
    value = data.get(name)
    # bool is an int subclass; a true/false tree_size is malformed, not 1/0.
    if type(value) is not int:
        raise CheckpointError(f"checkpoint field {name!r} is missing or not an integer")
    return value


def verify_checkpoint(checkpoint: Mapping[str, object], public_key: bytes) -> VerifiedCheckpoint:
    """Check a JSON-form checkpoint against a 32-byte Ed25519 public key; return what it vouches for.

    Every JSON field must agree with the signed note, and ``key_id`` must be the one derived from
    its key name and this public key, so a checkpoint cannot borrow another key's name or ID.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError("checkpoint must be a JSON object")
    note = _str_field(checkpoint, "note")
    tree_size = _int_field(checkpoint, "tree_size")
    root_hex = _str_field(checkpoint, "root_hash")
    kid = _str_field(checkpoint, "key_id")
    signature_b64 = _str_field(checkpoint, "signature")
    timestamp_text = _str_field(checkpoint, "timestamp")

    origin, note_size, note_root = parse_note(note)
    if note_size != tree_size:
        raise CheckpointError(f"tree_size {tree_size} differs from the signed note's {note_size}")
    if not _HEX64.fullmatch(root_hex) or bytes.fromhex(root_hex) != note_root:
        raise CheckpointError("root_hash differs from the signed note's root")
    match = _KEY_ID.fullmatch(kid)
    if not match:
        raise CheckpointError("key_id must look like <key name>+<8 hex digits>")
    if len(public_key) != 32:
        raise CheckpointError("public key must be 32 bytes")
    if _key_id_bytes(match["name"], public_key).hex() != match["hex"]:
        raise CheckpointError("key_id does not belong to this public key")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError("signature is not base64") from None
    if len(signature) != 64:
        raise CheckpointError("an Ed25519 signature is 64 bytes")
    _verify_signature(public_key, signature, note.encode("utf-8"))
    try:
        timestamp = datetime.fromisoformat(timestamp_text)
    except ValueError:
        raise CheckpointError("timestamp is not RFC 3339") from None
    if timestamp.tzinfo is None:
        raise CheckpointError("timestamp must carry a UTC offset")
    return VerifiedCheckpoint(origin, tree_size, note_root, match["name"], timestamp)


def sign_note(text: str, private_key: Ed25519PrivateKey, key_name: str) -> str:
    """Sign any note text (ending in a newline) and return the C2SP signed-note form with one signature line."""
    _check_key_name(key_name)
    if not isinstance(text, str) or not text.endswith("\n") or _NOTE_FORBIDDEN.search(text):
        raise CheckpointError("note text must end in a newline and hold no control characters but newline")
    signature = private_key.sign(text.encode("utf-8"))
    return _signed_note_text(text, key_name, _key_id_bytes(key_name, public_key_bytes(private_key)), signature)


def _signed_note_text(text: str, key_name: str, key_hash: bytes, signature: bytes) -> str:
    blob = base64.b64encode(key_hash + signature).decode("ascii")
    return f"{text}\n{EM_DASH} {key_name} {blob}\n"


def open_signed_note(signed: str, key_name: str, public_key: bytes) -> str:
    """Return the note text if a signature line by this key verifies (C2SP signed-note).

    Signatures by other keys (witness cosignatures, a rotated key) are ignored, as the spec says;
    a signature that claims to be this key's but fails rejects the whole note.
    """
    if not isinstance(signed, str) or _NOTE_FORBIDDEN.search(signed):
        raise CheckpointError("signed note must be text without control characters other than newline")
    split = signed.rfind("\n\n")
    if split < 0:
        raise CheckpointError("signed note has no blank line before its signatures")
    text, block = signed[: split + 1], signed[split + 2 :]
    if not block.endswith("\n"):
        raise CheckpointError("signature lines must end in a newline")
    wanted = _key_id_bytes(key_name, public_key)
    verified = False
    for line in block[:-1].split("\n"):
        prefix = f"{EM_DASH} "
        name, sep, blob_text = line[len(prefix) :].partition(" ")
        if not line.startswith(prefix) or not sep or not _KEY_NAME.fullmatch(name):
            raise CheckpointError("malformed signature line")
        try:
            blob = base64.b64decode(blob_text, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError("signature line is not base64") from None
        if len(blob) < 5:
            raise CheckpointError("signature line too short")
        if name != key_name or blob[:4] != wanted:
            continue
        if len(blob) != 68:
            raise CheckpointError("an Ed25519 signature line carries 4 + 64 bytes")
        _verify_signature(public_key, blob[4:], text.encode("utf-8"))
        verified = True
    if not verified:
        raise CheckpointError("no signature by the trusted key")
    return text


def verify_signed_note(signed: str, key_name: str, public_key: bytes) -> VerifiedCheckpoint:
    """Verify a checkpoint in signed-note text form (what witnesses exchange) with one trusted key."""
    origin, tree_size, root_hash = parse_note(open_signed_note(signed, key_name, public_key))
    return VerifiedCheckpoint(origin, tree_size, root_hash, key_name)
