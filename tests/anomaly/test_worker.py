"""A real Celery worker on Redis scores what a capture committed: no test code calls the scorer.

Needs PostgreSQL and Redis (the worker is another process: it must see committed rows and the broker);
skipped on the embedded default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from anomaly.models import Flag, ScoringRun
from config.celery import app as celery_app
from tests import factories as f
from tests.anomaly.conftest import ALICE_GLN, BOB_GLN, CAROL_GLN, day, packs

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (settings.REDIS_URL and settings.USING_POSTGRES), reason="needs PostgreSQL and Redis (a worker process)"
    ),
]


def _worker_env(queue_suffix: str) -> dict[str, str]:
    db = connection.settings_dict
    env = os.environ.copy()
    env["DATABASE_URL"] = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env["CELERY_TASK_ALWAYS_EAGER"] = "false"
    env["ANOMALY_TORCH_THREADS"] = "1"
    return env


def test_a_worker_scores_a_committed_capture_and_raises_the_flag(transactional_db, alice, bob, carol, settings):
    settings.ANOMALY_SCORE_ON_CAPTURE = True
    worker_name = f"scoring-test-{os.getpid()}@%h"
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()  # kicks left in the queues by earlier runs on this Redis database
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "scoring,default", "-c", "1",
         "--pool", "solo", "-n", worker_name, "-l", "WARNING"],
        cwd=ROOT, env=_worker_env(worker_name), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        p = packs(3)
        for client, events in (
            (alice.client, [f.commissioning(ALICE_GLN, p, when=day(1))]),
            (alice.client, [f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2))]),
            (carol.client, [f.shipping(CAROL_GLN, BOB_GLN, p[:1], when=day(5))]),  # a serial Carol never had
        ):
            response = client.post("/epcis/capture", data=f.document(*events), format="json")
            assert response.status_code == 202, response.content
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not Flag.objects.exists():
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else "the worker died"
            time.sleep(0.2)
        flag = Flag.objects.get()
        assert "serial_two_custodians" in {r["code"] for r in flag.reasons}
        assert ScoringRun.objects.filter(trigger="kick").exists()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        celery_app.conf.task_always_eager = True
