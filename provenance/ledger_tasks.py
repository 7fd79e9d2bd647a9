"""Periodic work of the verifiable ledger: signing checkpoints on a schedule.

Imported by provenance/tasks.py so that workers register it under ``provenance.tasks.*``, and by
settings for the beat schedule; it imports nothing from Django at module level for that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import shared_task

CHECKPOINT_TASK = "provenance.tasks.checkpoint_periodic"


@shared_task(name=CHECKPOINT_TASK, acks_late=True, ignore_result=True, max_retries=3, default_retry_delay=10)
def checkpoint_periodic() -> int | None:
    """Sign the tree head if the ledger grew; returns the signed tree size, or None when nothing was new.

    Idempotent: running twice signs at most one checkpoint per size, so a redelivered message is harmless.
    """
    from .ledger_services import checkpoint_issue

    checkpoint = checkpoint_issue()
    return checkpoint.tree_size if checkpoint else None


def beat_schedule(intervals: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Beat entries built from settings.CELERY_BEAT_SCHEDULE_INTERVALS (seconds).

    Each run expires after one interval: when no worker ran it in time, the next run does the same
    work, so stale messages are dropped instead of piling up behind a stopped worker.
    """
    every = float(intervals["checkpoint"])
    return {
        "ledger-checkpoint": {
            "task": CHECKPOINT_TASK,
            "schedule": every,
            "options": {"expires": every},
        },
    }


# The schedule at the default interval; settings build theirs with beat_schedule(CELERY_BEAT_SCHEDULE_INTERVALS).
BEAT_SCHEDULE = beat_schedule({"checkpoint": 60})
