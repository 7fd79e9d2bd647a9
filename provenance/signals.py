"""Signals of the provenance core, so that other apps react to the ledger without the core importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after a capture (or a deferred bulk load) has committed new ledger entries; no arguments but
# ``sender``. Receivers ring doorbells (derivation, scoring); they must never fail the capture.
capture_committed = Signal()
