"""Scoring benchmark (prints figures; never a timed test).

    .venv/bin/python bench/scoring.py throughput [--transfers 1000000] [--bundle PATH] [--gnn-transfers N]
    .venv/bin/python bench/scoring.py replay [--db PATH]
    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/scoring.py latency [--rate 200]
    .venv/bin/python bench/scoring.py training [--scale tiny] [--train-seeds 301-308] [--val-seeds 101-105]
        [--gnn-epochs N]
    .venv/bin/python bench/scoring.py dataset --scale medium --seed 301 --database-url postgres://.../med_301

throughput: batch scoring (the scorer's own path: feature views, time windows, snapshots) against the raw
    forward pass of the same model on the same graph (LightGBM predict on the feature matrix; the GNN on one
    snapshot holding every transfer), on a synthetic shipment graph whose feature rows are resampled from the
    simulated networks' real ones.
replay: ledger entries/s of the replay that computes facts and features (the incremental cost per capture), and
    a restarted scoring worker's resume from the graph snapshot against the full replay.
latency: capture -> score (and flag) latency at a steady event rate with one Celery worker on the scoring
    queue, PostgreSQL and Redis; it creates and drops its own database (bench_scoring).
training: time to train the supervised models on cached simulated networks, and the validation AUPRC reached.
    It uses the cached datasets data/models/datasets/<scale>-<seed>[-<options>]/dataset.npz: `evaluate` makes the
    tiny and small ones; `dataset` makes a medium (or large) one.
dataset: simulates a network at its ordinary incident rates, loads it through the capture path into the given
    (empty, PostgreSQL) database, derives and exports its dataset for `training`. Medium (1M events) on PostgreSQL:
    load 21 min, derive 61 min, replay 6 min; loading it into SQLite alone takes hours.
Every part prints its peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATASETS = ROOT / "data" / "models" / "datasets"


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def report(name: str, figures: dict) -> None:
    figures["peak_rss_mb"] = round(peak_mb(), 1)
    print(f"\n== {name}")
    for k, v in figures.items():
        print(f"  {k:44s} {v}")
    print("JSON " + json.dumps({name: figures}))


# ------------------------------------------------------------------------------------------------ synthetic graph


def synthetic_graph(n: int, *, seed: int = 0, days: float = 365.0) -> dict[str, np.ndarray]:
    """A shipment graph of ``n`` transfers with heavy-tailed partner degrees; feature rows resampled from the
    simulated networks' transfers (so the models see realistic inputs)."""
    from anomaly.ml.data import Dataset

    rng = np.random.default_rng(seed)
    from anomaly.ml.replay import N_FEATURES

    pools = [d for d in (Dataset.load(p) for p in sorted(DATASETS.glob("*/dataset.npz"))) if d.x.shape[1] == N_FEATURES]
    pools = pools[:8]
    if not pools:
        raise SystemExit("no cached datasets under data/models/datasets: run `manage.py evaluate` first")
    x_pool = np.vstack([d.x for d in pools])
    hits_pool = np.concatenate([d.arrays["n_hits"] for d in pools])
    static_pool = np.vstack([d.arrays["party_static"] for d in pools])
    n_parties = max(100, n // 50)
    n_lots = max(100, n // 10)
    # a few national wholesalers ship most; many pharmacies receive a little each
    weights = 1.0 / np.arange(1, n_parties + 1) ** 1.1
    weights /= weights.sum()
    src = rng.choice(n_parties, size=n, p=weights)
    dst = rng.integers(0, n_parties, size=n)
    rows = rng.integers(0, len(x_pool), size=n)
    t = np.sort(rng.uniform(20000.0, 20000.0 + days, size=n))
    seq = np.arange(n, dtype=np.int64) * 3
    received = rng.random(n) < 0.9
    return {
        "transfer_id": np.arange(1, n + 1, dtype=np.int64),
        "src": src.astype(np.int64),
        "dst": dst.astype(np.int64),
        "lot": rng.integers(0, n_lots, size=n).astype(np.int64),
        "t_create": t,
        "seq_create": seq,
        "seq_receive": np.where(received, seq + rng.integers(3, 3000, size=n) * 3, -1),
        "retracted": np.zeros(n, dtype=bool),
        "n_hits": hits_pool[rows],
        "x": x_pool[rows].astype(np.float32),
        "party_static": static_pool[rng.integers(0, len(static_pool), size=n_parties)],
        "n_parties": np.array(n_parties),
        "n_lots": np.array(n_lots),
    }


def latest_bundle() -> Path | None:
    bundles = sorted(
        (p for p in (ROOT / "data" / "models").glob("*/model.pt") if p.parent.name != "bench"),
        key=lambda p: p.stat().st_mtime,
    )
    return bundles[-1] if bundles else None


def throughput(args: argparse.Namespace) -> None:
    import torch

    from anomaly.ml.inference import load_scorer
    from anomaly.ml.nets import to_tensors
    from anomaly.ml.temporal import snapshot

    torch.set_num_threads(int(os.environ.get("ANOMALY_TORCH_THREADS", "0")) or (os.cpu_count() or 1))
    path = Path(args.bundle) if args.bundle else latest_bundle()
    if path is None:
        raise SystemExit("no model bundle: run `manage.py train_model` first or pass --bundle")
    scorer = load_scorer(path)
    t0 = time.perf_counter()
    g = synthetic_graph(args.transfers)
    build = time.perf_counter() - t0
    edges = np.arange(args.transfers)
    figures: dict = {
        "bundle": str(path),
        "production": scorer.production,
        "transfers": args.transfers,
        "threads": torch.get_num_threads(),
        "graph_build_s": round(build, 1),
    }
    trees = scorer.components.get("lightgbm_all")
    if trees is not None:
        t0 = time.perf_counter()
        trees.booster.predict(g["x"], num_iteration=trees.best_rounds)
        raw = time.perf_counter() - t0
        t0 = time.perf_counter()
        scorer.component_scores(g, edges, ["lightgbm_all"])
        batch = time.perf_counter() - t0
        figures.update(
            {
                "lightgbm raw predict transfers/s": round(args.transfers / raw),
                "lightgbm batch scoring transfers/s": round(args.transfers / batch),
                "lightgbm batch / raw": round(raw / batch, 3),
            }
        )
    gnn = scorer.components.get("gnn") if args.gnn_transfers > 0 else None
    if gnn is not None:
        n = min(args.gnn_transfers, args.transfers)
        sub = {
            k: (v[:n] if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == args.transfers else v)
            for k, v in g.items()
        }
        e = np.arange(n)
        # raw: one forward over a snapshot holding every transfer as a message edge and as a target
        s = snapshot(sub, e[-1:], gnn.norm, lookback_days=1e9)
        s.targets, s.tgt_src, s.tgt_dst, s.tgt_lot = e, sub["src"], sub["dst"], sub["lot"]
        s.tgt_attr = gnn.norm(sub["x"])
        tensors = to_tensors(s)
        gnn.net.eval()
        with torch.no_grad():
            t0 = time.perf_counter()
            gnn.net(tensors)
            raw = time.perf_counter() - t0
        del tensors, s
        t0 = time.perf_counter()
        gnn.score(sub, e)
        batch = time.perf_counter() - t0
        figures.update(
            {
                "gnn transfers": n,
                "gnn raw forward transfers/s": round(n / raw),
                "gnn batch scoring transfers/s (time windows)": round(n / batch),
                "gnn batch / raw": round(raw / batch, 3),
                "gnn window days / lookback days": f"{gnn.cfg.window_days} / {gnn.cfg.lookback_days}",
            }
        )
    report("throughput", figures)


# ------------------------------------------------------------------------------------------------ replay


def django_setup(database_url: str | None = None) -> None:
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def replay(args: argparse.Namespace) -> None:
    db = Path(args.db) if args.db else next(iter(sorted(DATASETS.glob("*/db.sqlite3"))), None)
    if db is None:
        raise SystemExit("no simulated ledger under data/models/datasets: run `manage.py evaluate` first")
    django_setup(f"sqlite:///{db}")
    import logging

    logging.disable(logging.INFO)
    from anomaly.graph import ShipmentGraph

    t0 = time.perf_counter()
    g = ShipmentGraph()
    n = g.advance()
    spent = time.perf_counter() - t0
    t0 = time.perf_counter()
    g.arrays()
    arrays = time.perf_counter() - t0
    # a restarted scoring worker: resume from the snapshot (written by beat's sweep) against replaying it all
    import tempfile

    from django.conf import settings

    from anomaly import graph as graph_module

    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        settings.MODEL_DIR = tmp
        graph_module.reset()
        graph_module._graph = g
        t0 = time.perf_counter()
        graph_module.snapshot_save(force=True)
        written = time.perf_counter() - t0
        size = (Path(tmp) / graph_module.SNAPSHOT_FILE).stat().st_size
        graph_module.reset()
        t0 = time.perf_counter()
        resumed = graph_module.shipment_graph()
        resume = time.perf_counter() - t0
        assert getattr(resumed, "_snapshot_seq", None) == g.seq, "the snapshot was not used"
    report(
        "replay",
        {
            "ledger": str(db),
            "entries": n,
            "transfers": len(g.replay.records),
            "replay entries/s": round(n / spent),
            "arrays build s": round(arrays, 2),
            "full replay s": round(spent, 2),
            "snapshot write s": round(written, 2),
            "snapshot MB": round(size / 1e6, 1),
            "resume from snapshot s": round(resume, 2),
            "resume / full replay": round(resume / spent, 3),
        },
    )


# ------------------------------------------------------------------------------------------------ latency


def latency(args: argparse.Namespace) -> None:
    import subprocess
    from urllib.parse import urlparse, urlunparse

    import psycopg

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("latency needs DATABASE_URL=postgres://... and REDIS_URL=redis://...")
    parsed = urlparse(base)
    admin = urlunparse(parsed._replace(path="/postgres"))
    bench_url = urlunparse(parsed._replace(path="/bench_scoring"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_scoring WITH (FORCE)")
        conn.execute("CREATE DATABASE bench_scoring")
    env = dict(os.environ, DATABASE_URL=bench_url, CELERY_TASK_ALWAYS_EAGER="false")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
    workers: list = []
    try:
        django_setup(bench_url)
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
        import logging

        logging.disable(logging.INFO)
        from anomaly.models import Score
        from provenance import services
        from provenance.models import Transfer

        bundle = Path(args.bundle) if args.bundle else latest_bundle()
        if bundle is not None:
            _register(bundle)
        import signal

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that the worker is stopped on a timeout too
        maker, dispensers = _network(services)
        services.custody_events_capture(
            document=_doc([_commissioning(maker, lot) for lot in range(50)]), organization=maker
        )
        # one worker on the scoring queue (the figure asked for); derivation kicked by capture has its own
        workers = [
            subprocess.Popen(
                [*CELERY_WORKER, "-Q", queue, "-n", f"{queue}@bench"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for queue in ("scoring", "default")
        ]
        time.sleep(5)  # the workers start
        import threading

        from django.db import connection as main_connection

        from anomaly.tasks import kick_scoring
        from provenance.models import CustodyEvent

        scored_at: dict[int, float] = {}  # ship seq -> when its score was first seen
        stop = threading.Event()

        def poll() -> None:
            from django.db import connection

            last = 0
            while not stop.is_set():
                rows = list(Score.objects.filter(id__gt=last).values_list("id", "transfer__ship_seq"))
                stamp = time.perf_counter()
                for pk, seq in rows:
                    last = max(last, pk)
                    if seq is not None:
                        scored_at.setdefault(seq, stamp)
                time.sleep(0.05)
            connection.close()

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        # warm-up: the worker's first run imports torch, loads the model and replays the ledger
        t0 = time.perf_counter()
        warm = [_shipment(maker, dispensers[0], 10**6)]
        services.custody_events_capture(document=_doc(warm), organization=maker)
        kick_scoring()
        warm_seq = CustodyEvent.objects.get(event_id=warm[0]["eventID"]).seq
        while warm_seq not in scored_at and time.perf_counter() - t0 < 120:
            time.sleep(0.05)
        cold = time.perf_counter() - t0
        sent: dict[str, float] = {}
        per_doc = max(1, args.batch)
        interval = per_doc / args.rate
        started = time.perf_counter()
        i = 0
        while time.perf_counter() - started < args.seconds:
            tick = time.perf_counter()
            events = [_shipment(maker, dispensers[(i + k) % len(dispensers)], i + k) for k in range(per_doc)]
            services.custody_events_capture(document=_doc(events), organization=maker)
            now = time.perf_counter()
            for e in events:
                sent[e["eventID"]] = now
            kick_scoring()  # what the capture commit hook does (the lead wires it)
            i += per_doc
            time.sleep(max(0.0, interval - (time.perf_counter() - tick)))
        sending = time.perf_counter() - started
        seq_of = dict(CustodyEvent.objects.filter(event_id__in=list(sent)).values_list("event_id", "seq"))
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline and len(scored_at) < len(seq_of):
            time.sleep(0.1)
        stop.set()
        poller.join(timeout=5)
        main_connection.close()
        lat = [scored_at[seq_of[e]] - t for e, t in sent.items() if e in seq_of and seq_of[e] in scored_at]
        lat_arr = np.array(lat)
        from anomaly.models import ScoringRun

        runs = list(
            ScoringRun.objects.filter(status="done").values_list("started_at", "finished_at", "transfers_scored")
        )
        durations = [(b - a).total_seconds() for a, b, _n in runs if b]
        report(
            "latency",
            {
                "events sent": len(sent),
                "rate events/s (asked)": args.rate,
                "rate events/s (captured)": round(len(sent) / sending, 1),
                "events per document": per_doc,
                "transfers scored": len(lat),
                "transfers": Transfer.objects.count(),
                "model": str(bundle) if bundle else "rules only",
                "p50 s (capture -> score, polled every 50 ms)": round(float(np.percentile(lat_arr, 50)), 3)
                if len(lat)
                else None,
                "p99 s": round(float(np.percentile(lat_arr, 99)), 3) if len(lat) else None,
                "max s": round(float(lat_arr.max()), 3) if len(lat) else None,
                "cold start s (first capture -> score)": round(cold, 2),
                "scoring runs": len(runs),
                "scoring run mean s": round(float(np.mean(durations)), 3) if durations else None,
                "transfers per run (mean)": round(float(np.mean([n for *_x, n in runs])), 1) if runs else None,
            },
        )
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS bench_scoring WITH (FORCE)")


CELERY_WORKER = [sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "1", "--pool", "solo", "-l", "WARNING"]


def _register(bundle: Path) -> None:
    import shutil

    from django.conf import settings

    from anomaly import services

    target = Path(settings.MODEL_DIR) / "bench" / "model.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundle, target)
    mv = services.model_version_register(
        version=f"bench-{int(time.time())}",
        kind="bench",
        checkpoint_path=target,
        trained_to_seq=0,
        threshold=0.5,
        metrics={},
        data={},
        code_version="bench",
        actor="bench",
    )
    from anomaly.ml.inference import load_scorer

    mv.kind = load_scorer(target).production
    mv.threshold = load_scorer(target).threshold
    mv.save()
    services.model_version_activate(model_version=mv, actor="bench", reason="latency benchmark")


def _gln(prefix: str) -> str:
    from provenance.epcis.identifiers import gs1_check_digit

    body = (prefix + "00000")[:12]
    return body + str(gs1_check_digit(body))


def _network(services):
    maker = services.organization_create(
        name="Bench Pharma", gln=_gln("0312345"), kind="manufacturer", company_prefixes=["0312345"]
    )
    services.location_create(
        sgln="urn:epc:id:sgln:0312345.00000.0", organization=maker, name="plant", latitude=40.5, longitude=-74.4
    )
    dispensers = []
    for k in range(20):
        prefix = f"08{k:05d}"
        org = services.organization_create(
            name=f"Bench Pharmacy {k}", gln=_gln(prefix), kind="dispenser", company_prefixes=[prefix]
        )
        services.location_create(
            sgln=f"urn:epc:id:sgln:{prefix}.00000.0",
            organization=org,
            name=org.name,
            latitude=38 + k * 0.1,
            longitude=-90 + k * 0.1,
        )
        dispensers.append(org)
    return maker, dispensers


def _shipment(maker, dispenser, i: int) -> dict:
    import uuid

    def sgln(gln: str) -> str:
        return f"urn:epc:id:sgln:{gln[:7]}.{gln[7:12]}.0"

    def pgln(gln: str) -> str:
        return f"urn:epc:id:pgln:{gln[:7]}.{gln[7:12]}"

    return {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid4()}",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "eventTimeZoneOffset": "+00:00",
        "epcList": [],
        "quantityList": [{"epcClass": f"urn:epc:class:lgtin:0312345.001001.B{i % 50}", "quantity": 1 + i % 7}],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": sgln(maker.gln)},
        "sourceList": [{"type": "owning_party", "source": pgln(maker.gln)}],
        "destinationList": [{"type": "owning_party", "destination": pgln(dispenser.gln)}],
    }


def _commissioning(maker, lot: int) -> dict:
    import uuid

    sgln = f"urn:epc:id:sgln:{maker.gln[:7]}.{maker.gln[7:12]}.0"
    return {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid4()}",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 86400)),
        "eventTimeZoneOffset": "+00:00",
        "epcList": [],
        "quantityList": [{"epcClass": f"urn:epc:class:lgtin:0312345.001001.B{lot}", "quantity": 100000}],
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": sgln},
        "bizLocation": {"id": sgln},
        "ilmd": {"cbvmda:lotNumber": f"B{lot}", "cbvmda:itemExpirationDate": "2029-12-31"},
    }


def _doc(events: list[dict]) -> dict:
    return {
        "@context": [
            "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
            {"cbvmda": "urn:epcglobal:cbv:mda:"},
        ],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "epcisBody": {"eventList": events},
    }


# ------------------------------------------------------------------------------------------------ training


def training(args: argparse.Namespace) -> None:
    from anomaly.management.commands.evaluate import seed_list
    from anomaly.ml.config import TrainConfig
    from anomaly.ml.data import Dataset
    from anomaly.ml.metrics import auprc
    from anomaly.ml.train import train_supervised

    def load(seeds: list[int], suffix: str = "") -> list[Dataset]:
        out = []
        for s in seeds:
            found = sorted(DATASETS.glob(f"{args.scale}-{s}{suffix}/dataset.npz"))
            if found:
                out.append(Dataset.load(found[0]))
        return out

    # evaluate's training networks carry an options suffix (raised incident rates); `dataset` makes plain ones
    train = load(seed_list(args.train_seeds), "-*") or load(seed_list(args.train_seeds))
    val = load(seed_list(args.val_seeds))
    if not train:
        raise SystemExit(
            f"no cached {args.scale} training networks: run `manage.py evaluate --scale {args.scale}` "
            f"or `bench/scoring.py dataset --scale {args.scale} --seed N --database-url ...`"
        )
    cfg = TrainConfig(progress=False)
    if args.gnn_epochs is not None:
        cfg.max_epochs = args.gnn_epochs
    t0 = time.perf_counter()
    out = train_supervised(
        [(d.arrays, np.flatnonzero(d.before(0.6))) for d in train],
        cfg,
        log=lambda _m: None,
        val_networks=[(d.arrays, np.flatnonzero(d.before(0.6))) for d in val] or None,
    )
    spent = time.perf_counter() - t0
    y = out["val"]["y"]
    report(
        "training",
        {
            "scale": args.scale,
            "training networks": len(train),
            "validation networks": len(val),
            "transfers": int(sum(len(d) for d in train)),
            "gnn max epochs": cfg.max_epochs,
            "seconds total": round(spent, 1),
            **{f"seconds {k}": v for k, v in out["timings"].items()},
            **{f"validation AUPRC {k}": round(auprc(y, s), 3) for k, s in out["val"]["scores"].items()},
        },
    )


# ------------------------------------------------------------------------------------------------ dataset


def dataset(args: argparse.Namespace) -> None:
    import subprocess
    import tempfile

    if not args.database_url.startswith("postgres"):
        raise SystemExit("--database-url must name an empty PostgreSQL database (SQLite loads take hours at medium)")
    folder = DATASETS / f"{args.scale}-{args.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DATABASE_URL": args.database_url, "ANOMALY_SCORE_ON_CAPTURE": "false"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    steps: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
        for name, command in (
            ("migrate", [*manage, "migrate", "--noinput", "-v0"]),
            (
                "simulate and load",
                [*manage, "simulate", "--seed", str(args.seed), "--scale", args.scale, "--out", tmp, "--load"],
            ),
            ("derive and export", [*manage, "evaluate", "--export-dataset", str(folder / "dataset.npz")]),
        ):
            t0 = time.perf_counter()
            subprocess.run(command, env=env, cwd=ROOT, check=True)
            steps[f"seconds {name}"] = round(time.perf_counter() - t0, 1)
    report("dataset", {"scale": args.scale, "seed": args.seed, "dataset": str(folder / "dataset.npz"), **steps})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--transfers", type=int, default=1_000_000)
    p.add_argument("--gnn-transfers", type=int, default=200_000, help="0 skips the GNN")
    p.add_argument("--bundle", default=None)
    p = sub.add_parser("replay")
    p.add_argument("--db", default=None)
    p = sub.add_parser("latency")
    p.add_argument("--rate", type=float, default=200.0, help="events per second")
    p.add_argument("--batch", type=int, default=10, help="events per captured document")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--bundle", default=None)
    p = sub.add_parser("training")
    p.add_argument("--scale", default="tiny")
    p.add_argument("--train-seeds", default="301-304,306-308")
    p.add_argument("--val-seeds", default="101-105")
    p.add_argument("--gnn-epochs", type=int, default=None, help="cap on the GNN's epochs (default: TrainConfig's)")
    p = sub.add_parser("dataset")
    p.add_argument("--scale", default="medium")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--database-url", required=True)
    args = parser.parse_args()
    parts = {"throughput": throughput, "replay": replay, "latency": latency, "training": training, "dataset": dataset}
    parts[args.part](args)


if __name__ == "__main__":
    main()
