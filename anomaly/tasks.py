"""Celery tasks of the anomaly app: thin, id-free (the watermark says what to do), idempotent.

Routed by settings.CELERY_TASK_ROUTES: ``score_*`` to the "scoring" queue, ``train_*`` to "training".
Imports nothing from Django at module level, so settings can import ``beat_schedule`` from here.

Reliability: acks late and rejected on worker loss, so a killed worker's message is redelivered; a
message is worked at most MAX_DELIVERIES times (a task that keeps killing its worker is dropped and
logged; the watermark keeps the work for the next kick or sweep). Kicks are coalesced: while one is
queued, further kicks add nothing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)

SCORE_TASK = "anomaly.tasks.score_new_transfers"
SWEEP_TASK = "anomaly.tasks.score_sweep"
TRAIN_TASK = "anomaly.tasks.train_model"
MAX_DELIVERIES = 3
KICK_KEY = "anomaly:score-kick-pending"
KICK_COALESCE_SECONDS = 30


def _delivery_count(task_id: str | None) -> int:
    if not task_id:
        return 1
    from django.core.cache import cache

    key = f"anomaly:deliveries:{task_id}"
    cache.add(key, 0, timeout=24 * 3600)
    try:
        return int(cache.incr(key))
    except ValueError:
        return 1


def _too_many(task: Any) -> bool:
    count = _delivery_count(getattr(task.request, "id", None))
    if count > MAX_DELIVERIES:
        logger.error(
            "task %s delivered %d times (limit %d): dropped; the next kick or sweep retries from the watermark",
            task.request.id,
            count,
            MAX_DELIVERIES,
        )
        return True
    return False


@shared_task(
    bind=True,
    name=SCORE_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=3,
    default_retry_delay=5,
)
def score_new_transfers(self: Any, trigger: str = "kick") -> int:
    """Derive and score everything recorded since the watermarks; returns how many transfers were scored."""
    from django.core.cache import cache
    from django.db import OperationalError

    cache.delete(KICK_KEY)
    if _too_many(self):
        return 0
    from anomaly.services import transfers_score
    from provenance.derive import ledger_derive

    try:
        ledger_derive()
        runs = transfers_score(trigger=trigger)
    except OperationalError as exc:  # database busy or restarting: try again shortly
        raise self.retry(exc=exc) from exc
    return sum(r.transfers_scored for r in runs)


@shared_task(bind=True, name=SWEEP_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def score_sweep(self: Any) -> int:
    """Beat: catch up after lost kicks or an outage, and rescore shipments overdue for receipt."""
    if _too_many(self):
        return 0
    from anomaly.services import transfers_score
    from provenance.derive import ledger_derive

    ledger_derive()
    runs = transfers_score(trigger="beat", age_open=True)
    try:
        from anomaly.graph import snapshot_save

        snapshot_save()  # a restarted worker resumes from here instead of replaying the whole ledger
    except Exception:
        logger.warning("could not write the shipment graph snapshot", exc_info=True)
    return sum(r.transfers_scored for r in runs)


@shared_task(
    bind=True, name="anomaly.tasks.score_explain_flags", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def score_explain_flags(self: Any, flag_ids: list[int]) -> int:
    """The GNN's explanation of new flags (queue "scoring", after the scores are committed)."""
    if _too_many(self):
        return 0
    from anomaly.services import flags_explain

    return flags_explain(flag_ids=list(flag_ids))


def kick_scoring() -> None:
    """Ring the scoring doorbell after a capture commits (coalesced; a lost kick costs latency, never a score)."""
    from django.core.cache import cache

    try:
        if cache.add(KICK_KEY, 1, timeout=KICK_COALESCE_SECONDS):
            score_new_transfers.delay()
    except Exception:
        logger.warning("could not enqueue scoring; the beat sweep will catch up", exc_info=True)


def on_capture_committed(sender: Any, **kwargs: Any) -> None:
    """Receiver of provenance.signals.capture_committed: every committed capture kicks scoring."""
    from django.conf import settings

    if getattr(settings, "ANOMALY_SCORE_ON_CAPTURE", True):
        kick_scoring()


@shared_task(
    bind=True,
    name=TRAIN_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    time_limit=7000,  # under the broker visibility timeout (7200 s): a long run is not delivered twice
    soft_time_limit=6900,
)
def train_model(self: Any, args: list[str] | None = None) -> int:
    """Train (and register) a model version in a child process: `manage.py train_model ARGS`.

    A subprocess, because Lightning must not fork or re-exec a Celery worker (DDP re-runs sys.argv) and a
    GPU context must not live in the worker process. Output goes to the worker's log as it comes.
    """
    if _too_many(self):
        return -1
    manage = Path(__file__).resolve().parent.parent / "manage.py"
    command = [sys.executable, str(manage), "train_model", *(args or [])]
    logger.info("training: %s", " ".join(command))
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy()
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            logger.info("train_model: %s", line.rstrip())
        code = proc.wait()
    if code != 0:
        raise RuntimeError(f"train_model exited with status {code}")
    return code


def beat_schedule(intervals: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Beat entries of the anomaly app; each run expires after one interval (the next does the same work)."""
    every = float(intervals.get("score_sweep", 60))
    return {"anomaly-score-sweep": {"task": SWEEP_TASK, "schedule": every, "options": {"expires": every}}}
