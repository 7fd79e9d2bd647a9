"""Ingest benchmark (prints figures; never a timed test).

In one run against PostgreSQL it measures, on the same event rows:
  (a) a raw COPY of the ledger rows into a scratch table,
  (b) batched capture through HTTP: documents of 1,000 events, gunicorn with 2 workers,
  (c) single-event POSTs from several concurrent clients,
  (d) a raw loop of one transaction per INSERT into a scratch table,
and prints events/s for each and the ratios b/a and c/d (aims: >= 0.5 each).

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/ingest.py
       [--events 20000] [--single 2000] [--clients 8] [--checkpoint-interval SECONDS]
It creates and drops its own database (bench_ingest); nothing else is touched.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.epcis.identifiers import gs1_check_digit  # noqa: E402

BENCH_DB = "bench_ingest"
CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"cbvmda": "urn:epcglobal:cbv:mda:"}]
OPERATOR_GLN = "0614141000005"
SITES = [f"07{n:05d}" for n in range(1, 21)]  # 20 company prefixes, one site each


def gln(prefix: str) -> str:
    body = (prefix + "00000")[:12]
    return body + str(gs1_check_digit(body))


def make_events(n: int, run: str) -> list[dict]:
    """Commissioning, shipping and receiving events with 5 serials each, across 20 sites."""
    events = []
    for i in range(n):
        site = SITES[i % len(SITES)]
        dest = SITES[(i + 7) % len(SITES)]
        serials = [f"urn:epc:id:sgtin:{site}.000001.{run}{i:07d}{k}" for k in range(5)]
        kind = i % 3
        event = {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{run}/{i}')}",
            "eventTime": f"2026-10-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.000-05:00",
            "eventTimeZoneOffset": "-05:00",
            "epcList": serials,
            "action": "ADD" if kind == 0 else "OBSERVE",
            "bizStep": ("commissioning", "shipping", "receiving")[kind],
            "disposition": ("active", "in_transit", "in_progress")[kind],
            "readPoint": {"id": f"urn:epc:id:sgln:{site}.00000.0"},
            "bizLocation": {"id": f"urn:epc:id:sgln:{site}.00000.0"},
        }
        if kind == 0:
            event["ilmd"] = {"cbvmda:lotNumber": f"L{i % 50}", "cbvmda:itemExpirationDate": "2028-12-31"}
        else:
            event["sourceList"] = [{"type": "owning_party", "source": f"urn:epc:id:pgln:{site}.00000"}]
            event["destinationList"] = [{"type": "owning_party", "destination": f"urn:epc:id:pgln:{dest}.00000"}]
        events.append(event)
    return events


def document(events: list[dict]) -> dict:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T00:00:00Z",
        "epcisBody": {"eventList": events},
    }


def admin_url(url: str, db: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path=f"/{db}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], env: dict[str, str]) -> str:
    return subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def wait_ready(base: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--checkpoint-interval", type=float, default=0.0, help="run checkpointing every N seconds during (b) (0: off)"
    )
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        sys.exit("bench/ingest.py needs DATABASE_URL pointing at PostgreSQL")

    with psycopg.connect(admin_url(base_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    db_url = admin_url(base_url, BENCH_DB)
    # With Redis, capture only rings the doorbell for derived work (as in production, where a worker
    # does it); without it, derivation would run inside each request and be measured as capture.
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DEBUG": "false",
        "API_KEY_THROTTLE_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14",
    }
    py = sys.executable
    run([py, "manage.py", "migrate", "--noinput"], env)
    key = (
        run([py, "manage.py", "create_partner", "--name", "Bench Operator", "--gln", OPERATOR_GLN, "--operator"], env)
        .strip()
        .splitlines()[-1]
    )
    for prefix in SITES:
        run(
            [
                py,
                "manage.py",
                "create_partner",
                "--name",
                f"Site {prefix}",
                "--gln",
                gln(prefix),
                "--company-prefix",
                prefix,
            ],
            env,
        )

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            py,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "600",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    checkpointer = None
    try:
        wait_ready(base)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/ld+json"}

        # (b) batched capture over HTTP, two clients for the two workers.
        events = make_events(args.events, "b")
        bodies = [json.dumps(document(events[i : i + 1000])).encode() for i in range(0, len(events), 1000)]
        if args.checkpoint_interval:
            # One long-running checkpointer, as a beat-driven worker would be (not a process per checkpoint).
            loop = (
                "import os, time, django\n"
                "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
                "django.setup()\n"
                "from provenance.ledger_services import checkpoint_issue\n"
                f"while True:\n    checkpoint_issue()\n    time.sleep({args.checkpoint_interval})\n"
            )
            checkpointer = subprocess.Popen(
                [py, "-c", loop], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        def post_document(body: bytes) -> int:
            with httpx.Client(timeout=600) as client:
                response = client.post(f"{base}/epcis/capture", content=body, headers=headers)
                if response.status_code != 202:
                    raise RuntimeError(f"capture failed: {response.status_code} {response.text[:300]}")
                return response.json()["recordedCount"]

        start = time.perf_counter()
        with cf.ThreadPoolExecutor(2) as pool:
            recorded = sum(pool.map(post_document, bodies))
        b_rate = recorded / (time.perf_counter() - start)
        if checkpointer:
            checkpointer.terminate()

        # (c) single-event POSTs from several concurrent clients.
        singles = make_events(args.single, "c")

        def post_single(chunk: list[dict]) -> int:
            ok = 0
            with httpx.Client(timeout=120) as client:
                for event in chunk:
                    response = client.post(f"{base}/epcis/events", content=json.dumps(event), headers=headers)
                    ok += response.status_code == 201
            return ok

        chunks = [singles[i :: args.clients] for i in range(args.clients)]
        start = time.perf_counter()
        with cf.ThreadPoolExecutor(args.clients) as pool:
            single_ok = sum(pool.map(post_single, chunks))
        c_rate = single_ok / (time.perf_counter() - start)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT seq, record_time, event_id, event_hash, event_type, action, event_time, event_time_zone_offset,"
            " biz_step, disposition, read_point, biz_location, is_error_declaration, submitter_id, api_key_id,"
            " capture_job_id, document_sha256, document_index, body::text, body_sha256, context::text"
            " FROM provenance_custodyevent ORDER BY seq LIMIT %s",
            (args.events,),
        ).fetchall()
        columns = (
            "seq, record_time, event_id, event_hash, event_type, action, event_time, event_time_zone_offset,"
            " biz_step, disposition, read_point, biz_location, is_error_declaration, submitter_id, api_key_id,"
            " capture_job_id, document_sha256, document_index, body, body_sha256, context"
        )

        # (a) raw COPY of the same rows into a scratch table (no triggers, no indexes beyond the key).
        conn.execute("DROP TABLE IF EXISTS scratch_copy")
        conn.execute("CREATE TABLE scratch_copy (LIKE provenance_custodyevent INCLUDING DEFAULTS)")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY scratch_copy ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        a_rate = len(rows) / (time.perf_counter() - start)

        # (d) raw loop: one transaction per INSERT.
        conn.execute("DROP TABLE IF EXISTS scratch_loop")
        conn.execute("CREATE TABLE scratch_loop (LIKE provenance_custodyevent INCLUDING DEFAULTS)")
        conn.commit()
        sample = rows[: args.single]
        placeholders = ", ".join(["%s"] * 21)
    with psycopg.connect(db_url, autocommit=True) as conn:
        start = time.perf_counter()
        for row in sample:
            conn.execute(f"INSERT INTO scratch_loop ({columns}) VALUES ({placeholders})", row)
        d_rate = len(sample) / (time.perf_counter() - start)

    with psycopg.connect(admin_url(base_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")

    out = io.StringIO()
    out.write(f"events: batched {recorded}, single {single_ok} ({args.clients} clients)\n")
    out.write(f"(a) raw COPY into scratch table        {a_rate:10.0f} events/s\n")
    out.write(f"(b) batched HTTP capture (1,000/doc)   {b_rate:10.0f} events/s\n")
    out.write(f"(c) single-event POSTs, concurrent     {c_rate:10.0f} events/s\n")
    out.write(f"(d) raw one-transaction-per-insert     {d_rate:10.0f} events/s\n")
    out.write(f"b/a = {b_rate / a_rate:.3f} (aim >= 0.5)   c/d = {c_rate / d_rate:.3f} (aim >= 0.5)\n")
    print(out.getvalue(), end="")


if __name__ == "__main__":
    main()
