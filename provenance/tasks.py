"""Celery tasks of the provenance core: thin, id-driven, idempotent (the watermark does the work)."""

from __future__ import annotations

from celery import shared_task

from .ledger_tasks import checkpoint_periodic  # noqa: F401 - registers the beat task with workers


@shared_task(acks_late=True, max_retries=5, default_retry_delay=10)
def derive_from_ledger() -> int:
    """Bring derived tables (packages, lots, transfers) up to the ledger head; returns entries processed."""
    from .derive import ledger_derive

    return ledger_derive()
