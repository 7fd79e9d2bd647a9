"""Ledger benchmark (prints figures; never a timed test).

In one run against PostgreSQL it measures:
  (1) verify_ledger throughput (entries/s) against a baseline that reads the same rows and hashes the
      same bytes (entry and event body) with no checks, in the same run (aim: verify >= 50% of baseline);
  (2) inclusion-proof latency p50/p99 through HTTP (GET /api/ledger/proofs/inclusion) and of the proof
      computation alone, at a small and a large ledger (default 10k and 1M entries);
  (3) the cost of signing one checkpoint in-process (what a warm Celery worker pays per beat);
  (4) in-process capture throughput in alternating blocks without and with a warm checkpointer process
      (like a Celery worker running the beat task), at the smallest --checkpoint-interval;
  (5) capture throughput of bench/ingest.py with checkpointing running vs without (a run of it per
      interval; aim: at most 10% slower). Its checkpointer starts `manage.py checkpoint` afresh each
      time, about a second of CPU, which a beat-driven worker does not pay. Skip with --no-ingest.

The ledger is filled fast and directly, not through HTTP: synthetic CustodyEvent rows are COPYed in
batches and their Merkle nodes computed with merkle.append_leaves, as the sequencer would.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/ledger.py
       [--small 10000] [--large 1000000] [--proofs 1000] [--ingest-events 60000]
       [--checkpoint-interval 60 [5 ...]] [--no-ingest | --no-ledger]
It creates and drops its own database (bench_ledger); bench/ingest.py drops and creates bench_ingest.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "bench_ledger"
BATCH = 50_000
OPERATOR_GLN = "0614141000005"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def admin_url(url: str, db: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{db}"))


class FrontierStore:
    """A NodeStore that keeps only the compact range append_leaves needs, and hands back what it wrote."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.fresh: dict[tuple[int, int], bytes] = {}

    def get_many(self, ids: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {i: self.nodes[i] for i in ids if i in self.nodes}

    def put_many(self, nodes: Mapping[tuple[int, int], bytes]) -> None:
        self.fresh.update(nodes)
        self.nodes.update(nodes)

    def trim(self, size: int) -> None:
        from provenance.ledger.merkle import range_nodes

        self.nodes = {n: self.nodes[n] for n in range_nodes(0, size)}
        self.fresh = {}


def event_id_of(seq: int) -> str:
    return f"urn:uuid:{uuid.UUID(int=seq + 1)}"


def fill(target: int, store: FrontierStore, organization_id: int, gln: str) -> float:
    """Append synthetic entries up to ``target``; returns entries/s of the fill."""
    from django.db import transaction

    from provenance.bulk import insert_rows
    from provenance.ledger import merkle
    from provenance.ledger.entry import encode_entry, event_sha256
    from provenance.models import CustodyEvent, LedgerHead, MerkleNode

    head, _ = LedgerHead.objects.get_or_create(id=1)
    fields = (
        "seq",
        "record_time",
        "event_id",
        "event_hash",
        "event_type",
        "action",
        "event_time",
        "event_time_zone_offset",
        "biz_step",
        "disposition",
        "read_point",
        "biz_location",
        "is_error_declaration",
        "submitter",
        "api_key_id",
        "document_sha256",
        "document_index",
        "body",
        "body_sha256",
        "context",
    )
    context = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
    started = time.perf_counter()
    start = head.tree_size
    while start < target:
        end = min(start + BATCH, target)
        rows, leaves = [], []
        for seq in range(start, end):
            event_id = event_id_of(seq)
            when = T0 + timedelta(seconds=seq)
            body = {
                "type": "ObjectEvent",
                "eventID": event_id,
                "eventTime": when.isoformat(),
                "eventTimeZoneOffset": "+00:00",
                "action": "OBSERVE",
                "bizStep": "shipping",
                "disposition": "in_transit",
                "epcList": [f"urn:epc:id:sgtin:0614141.107346.{seq}"],
                "readPoint": {"id": "urn:epc:id:sgln:0614141.00000.0"},
            }
            received = event_sha256(body)
            event_hash = f"ni:///sha-256;{hashlib.sha256(event_id.encode()).hexdigest()}?ver=CBV2.0"
            rows.append(
                (
                    seq,
                    when,
                    event_id,
                    event_hash,
                    "ObjectEvent",
                    "OBSERVE",
                    when,
                    "+00:00",
                    "https://ref.gs1.org/cbv/BizStep-shipping",
                    "https://ref.gs1.org/cbv/Disp-in_transit",
                    "https://id.gs1.org/414/0614141000005",
                    "",
                    False,
                    organization_id,
                    "",
                    "0" * 64,
                    seq,
                    body,
                    received,
                    context,
                )
            )
            leaves.append(
                merkle.leaf_hash(
                    encode_entry(
                        seq=seq,
                        event_id=event_id,
                        event_hash=event_hash,
                        record_time=when,
                        submitter=gln,
                        received_sha256=received,
                    )
                )
            )
        with transaction.atomic():
            insert_rows(CustodyEvent, fields, rows)
            merkle.append_leaves(store, start, leaves)
            insert_rows(
                MerkleNode,
                ("level", "index", "hash"),
                [(level, index, value) for (level, index), value in store.fresh.items()],
            )
            LedgerHead.objects.filter(id=1).update(tree_size=end)
        store.trim(end)
        start = end
    elapsed = time.perf_counter() - started
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE provenance_custodyevent")
        conn.execute("VACUUM ANALYZE provenance_merklenode")
    return (target - head.tree_size) / elapsed if elapsed else 0.0


def baseline(n: int, *, bodies: bool, chunk: int = 10_000) -> float:
    """Read the same rows as verify_ledger and hash the same bytes, checking nothing; entries/s."""
    from provenance.ledger.entry import encode_entry, event_sha256
    from provenance.models import CustodyEvent, Organization

    glns = dict(Organization.objects.values_list("id", "gln"))
    columns = ["seq", "record_time", "event_id", "event_hash", "body_sha256", "submitter_id"] + (
        ["body"] if bodies else []
    )
    started = time.perf_counter()
    for start in range(0, n, chunk):
        qs = CustodyEvent.objects.filter(seq__gte=start, seq__lt=start + chunk).order_by("seq", "record_time")
        for values in qs.values_list(*columns):
            entry = encode_entry(
                seq=values[0],
                event_id=values[2],
                event_hash=values[3],
                record_time=values[1],
                submitter=glns[values[5]],
                received_sha256=values[4],
            )
            hashlib.sha256(b"\x00" + entry).digest()
            if bodies:
                event_sha256(values[6])
    return n / (time.perf_counter() - started)


def verify_rate(*, bodies: bool) -> tuple[float, int]:
    from provenance.ledger_verify import ledger_verify

    report = ledger_verify(bodies=bodies)
    if not report.ok:
        raise RuntimeError(f"the bench ledger does not verify: {report.first()}")
    return report.tree_size / report.seconds, report.checkpoints_checked


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def proof_latency(n: int, tree_size: int, samples: int, key: str) -> dict[str, float]:
    from django.test import Client

    from provenance.ledger_store import inclusion_proof

    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    rng = random.Random(n)
    seqs = [rng.randrange(n) for _ in range(samples)]
    http, compute = [], []
    for seq in seqs[:20]:  # warm caches and connections
        client.get("/api/ledger/proofs/inclusion", {"event_id": event_id_of(seq), "tree_size": tree_size})
    for seq in seqs:
        started = time.perf_counter()
        response = client.get("/api/ledger/proofs/inclusion", {"event_id": event_id_of(seq), "tree_size": tree_size})
        http.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"inclusion proof failed: {response.status_code} {response.content[:200]!r}")
        started = time.perf_counter()
        inclusion_proof(seq, tree_size)
        compute.append((time.perf_counter() - started) * 1000)
    return {
        "http_p50": statistics.median(http),
        "http_p99": percentile(http, 0.99),
        "proof_p50": statistics.median(compute),
        "proof_p99": percentile(compute, 0.99),
    }


def ingest_rate(events: int, checkpoint_interval: float) -> tuple[float, str]:
    command = [
        sys.executable,
        str(ROOT / "bench" / "ingest.py"),
        "--events",
        str(events),
        "--single",
        "200",
        "--checkpoint-interval",
        str(checkpoint_interval),
    ]
    env = {**os.environ, "DATABASE_URL": os.environ.get("BENCH_BASE_DATABASE_URL") or os.environ["DATABASE_URL"]}
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    match = re.search(r"\(b\) batched HTTP capture.*?([\d.]+) events/s", out)
    if not match:
        raise RuntimeError(f"bench/ingest.py printed no capture rate:\n{out}")
    return float(match.group(1)), out


_CHECKPOINTER = """
import signal, sys, time
import django
django.setup()
from provenance.ledger_services import checkpoint_issue
while True:
    checkpoint_issue()
    time.sleep(float(sys.argv[1]))
"""


def capture_interleaved(operator: Any, *, blocks: int, documents: int, interval: float) -> tuple[float, float, int]:
    """Capture in-process, alternating blocks without and with a warm checkpointer process signing every
    ``interval`` s (paused with SIGSTOP in between), so drifting background load hits both alike.
    Returns (events/s without, events/s with, checkpoints signed)."""
    import signal

    from ingest import document, make_events

    from config.celery import app
    from provenance import services
    from provenance.models import Checkpoint

    app.conf.task_always_eager = False  # derived work only rings the (in-memory) doorbell, as with a worker
    events = make_events(blocks * documents * 1000, "interleaved")
    docs = [document(events[i : i + 1000]) for i in range(0, len(events), 1000)]
    signed_before = Checkpoint.objects.count()
    checkpointer = subprocess.Popen([sys.executable, "-c", _CHECKPOINTER, str(interval)], cwd=ROOT)
    time.sleep(8)  # let it import Django and sign once: a worker is warm long before traffic arrives
    checkpointer.send_signal(signal.SIGSTOP)
    spent = {False: 0.0, True: 0.0}
    counted = {False: 0, True: 0}
    try:
        for block in range(blocks):
            with_checkpoints = block % 2 == 1
            if with_checkpoints:
                checkpointer.send_signal(signal.SIGCONT)
            started = time.perf_counter()
            for doc in docs[block * documents : (block + 1) * documents]:
                counted[with_checkpoints] += services.custody_events_capture(
                    document=doc, organization=operator
                ).recorded_count
            spent[with_checkpoints] += time.perf_counter() - started
            if with_checkpoints:
                checkpointer.send_signal(signal.SIGSTOP)
    finally:
        checkpointer.send_signal(signal.SIGCONT)
        checkpointer.terminate()
        checkpointer.wait(timeout=30)
    signed = Checkpoint.objects.count() - signed_before
    return counted[False] / spent[False], counted[True] / spent[True], signed


def checkpoint_cost(samples: int = 20) -> float:
    """Median milliseconds to sign one checkpoint in-process, as a warm worker does on each beat."""
    from provenance.ledger_services import checkpoint_issue

    times = []
    for _ in range(samples):
        started = time.perf_counter()
        checkpoint_issue(force=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=1000, help="inclusion proofs sampled per size")
    parser.add_argument("--ingest-events", type=int, default=60_000)
    parser.add_argument(
        "--checkpoint-interval",
        type=float,
        nargs="+",
        default=[60.0],
        help="seconds between checkpoints in the ingest runs with checkpointing (one run per value)",
    )
    parser.add_argument("--capture-blocks", type=int, default=10, help="interleaved blocks of 2,000 events")
    parser.add_argument("--no-ingest", action="store_true", help="skip the capture runs")
    parser.add_argument("--no-ledger", action="store_true", help="only the capture runs")
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        sys.exit("bench/ledger.py needs DATABASE_URL pointing at PostgreSQL")
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    if not args.no_ledger:
        ledger_figures(args, base_url, say)
    if not args.no_ingest:
        without, _ = ingest_rate(args.ingest_events, 0)
        say(f"--- capture (bench/ingest.py (b), {args.ingest_events:,} events) ---")
        say(f"without checkpointing             {without:8,.0f} events/s")
        for interval in args.checkpoint_interval:
            rate, _ = ingest_rate(args.ingest_events, interval)
            say(
                f"with a checkpoint every {interval:4g} s    {rate:8,.0f} events/s   "
                f"slowdown {1 - rate / without:6.1%} (aim <= 10%)"
            )
    print("\nSummary:\n" + "\n".join(lines))


def ledger_figures(args: argparse.Namespace, base_url: str, say: Any) -> None:
    with psycopg.connect(admin_url(base_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    from provenance.ledger.checkpoint import generate_key, private_key_b64

    os.environ.update(
        {
            "BENCH_BASE_DATABASE_URL": base_url,
            "DATABASE_URL": admin_url(base_url, BENCH_DB),
            "REDIS_URL": "",
            "DEBUG": "false",
            "API_KEY_THROTTLE_RATE": "100000000/min",
            "LOG_LEVEL": "WARNING",
            "LEDGER_SIGNING_KEY": private_key_b64(generate_key()),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    from provenance import services
    from provenance.ledger_services import checkpoint_issue

    try:
        call_command("migrate", "--noinput", verbosity=0)
        operator = services.organization_create(name="Bench Operator", gln=OPERATOR_GLN, is_operator=True)
        _, key = services.api_key_issue(organization=operator, name="bench")
        store = FrontierStore()
        for size in (args.small, args.large):
            rate = fill(size, store, operator.pk, operator.gln)
            checkpoint = checkpoint_issue()
            assert checkpoint is not None
            assert checkpoint.tree_size == size
            say(f"--- ledger of {size:,} entries (filled at {rate:,.0f} entries/s) ---")
            latency = proof_latency(size, size, args.proofs, key)
            say(
                f"inclusion proof via HTTP     p50 {latency['http_p50']:7.2f} ms   p99 {latency['http_p99']:7.2f} ms"
                f"   ({args.proofs} random events)"
            )
            say(f"inclusion proof computation  p50 {latency['proof_p50']:7.2f} ms   p99 {latency['proof_p99']:7.2f} ms")
            say(f"signing one checkpoint       p50 {checkpoint_cost():7.2f} ms (in-process, as a warm worker)")
            for bodies in (True, False):
                base = baseline(size, bodies=bodies)
                verified, checkpoints = verify_rate(bodies=bodies)
                what = "entries + event bodies" if bodies else "entries only (--skip-bodies)"
                say(
                    f"verify_ledger [{what}]: {verified:,.0f} entries/s vs baseline {base:,.0f} entries/s "
                    f"= {verified / base:.0%} (aim >= 50%; {checkpoints} checkpoints checked)"
                )
        interval = min(args.checkpoint_interval)
        without, with_checkpoints, signed = capture_interleaved(
            operator, blocks=args.capture_blocks, documents=2, interval=interval
        )
        say(f"--- in-process capture at {args.large:,}+ entries, {args.capture_blocks} interleaved blocks ---")
        say(
            f"without checkpointing {without:,.0f} events/s; with a warm checkpointer every {interval:g} s "
            f"({signed} signed) {with_checkpoints:,.0f} events/s; slowdown {1 - with_checkpoints / without:.1%} "
            "(aim <= 10%)"
        )
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url(base_url, "postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
