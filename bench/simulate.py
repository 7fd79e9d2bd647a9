"""Simulator benchmark (prints figures; never a timed test).

In one run it measures, at one scale (default small):
  (a) a raw loop that only formats the same number of EPCIS event templates (eventIDs, SGTINs, times)
      and writes them to disk in as many document files as the simulation wrote,
  (b) the simulation, generating to files: `generate(seed, scale, out_dir)`, wall time of the whole call,
and prints events, seconds, events/s, CPU seconds, peak RSS and the ratio b/a. Each measurement runs in
a fresh process (so peak RSS is the run's own) and is repeated; the median is reported. The issue asks
for (b) >= 50,000 events/s on one core; `--cpu N` pins both to one CPU.

Usage: .venv/bin/python bench/simulate.py [--scale small] [--seed 1] [--repeat 3] [--cpu N]
Output goes to a temporary folder that is deleted once every run is done (about 1.5 GB per medium run), not
between runs: on an ext4 file system without a journal, files created within a few minutes of a mass deletion
get their inodes only after the kernel has scanned past every recently freed one (find_inode_bit /
recently_deleted), which measured 0.3-0.5 ms per file and made the later runs of a session several seconds
slower than the first. Runs started within minutes of another large deletion still pay it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the child process: sys.argv[1] is a JSON job; prints one JSON line of figures.
CHILD = r"""
import json, os, resource, sys, time
job = json.loads(sys.argv[1])
sys.path.insert(0, job["root"])
if job["cpu"] is not None:
    os.sched_setaffinity(0, {job["cpu"]})
from pathlib import Path

def figures(events, wall, r0):
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    return {"events": events, "seconds": wall, "cpu_seconds": user + system, "user_seconds": user,
            "system_seconds": system, "peak_rss_mb": r1.ru_maxrss / 1024}

out = Path(job["out"])
if job["what"] == "simulate":
    from simulator.generate import generate
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    result = generate(seed=job["seed"], scale=job["scale"], out_dir=out)
    wall = time.perf_counter() - t0
    print(json.dumps({**figures(result.events, wall, r0), "documents": result.manifest["counts"]["documents"]}))
else:
    from simulator.events import Clock, EventIds, document, object_event
    import datetime as dt
    n, docs = job["events"], job["documents"]
    clock, ids = Clock(dt.date(2025, 3, 3), 400), EventIds(job["seed"])
    per_doc = -(-n // docs)
    rp = "urn:epc:id:sgln:0312345.00000.0"
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    (out / "documents").mkdir(parents=True)
    written = 0
    for d in range(docs):
        events = []
        for i in range(min(per_doc, n - written)):
            k = written + i
            epc = "urn:epc:id:sgtin:0312345.012345.%013d" % (k * 2654435761 % 10**13)
            ts = clock.local(k * 7_919 % (400 * 86_400_000), -300)
            events.append(object_event(ids.next(), ts, "-05:00", [epc], "OBSERVE", "dispensing", "dispensed", rp))
        written += len(events)
        body = document(events, clock.utc(0), "urn:epc:id:pgln:0312345.00000")
        with open(out / "documents" / f"{d:07d}.json", "wb") as fh:
            fh.write(body)
    wall = time.perf_counter() - t0
    print(json.dumps(figures(written, wall, r0)))
"""


def measure(job: dict, out: Path) -> dict:
    job = {**job, "root": str(ROOT), "out": str(out)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(job)], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=None, help="pin every measured process to this CPU")
    args = parser.parse_args()
    common = {"seed": args.seed, "scale": args.scale, "cpu": args.cpu}

    sims, raws = [], []
    session = Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    try:
        for i in range(args.repeat):
            sim = measure({**common, "what": "simulate"}, session / f"sim-{i}")
            raw = measure(
                {**common, "what": "raw", "events": sim["events"], "documents": sim["documents"]}, session / f"raw-{i}"
            )
            sims.append(sim)
            raws.append(raw)
            print(
                f"  run: simulate {sim['events']:,} events in {sim['seconds']:.2f} s "
                f"({sim['events'] / sim['seconds']:,.0f}/s, CPU {sim['user_seconds']:.2f} s user "
                f"+ {sim['system_seconds']:.2f} s system); raw templates {raw['events'] / raw['seconds']:,.0f}/s "
                f"(CPU {raw['user_seconds']:.2f} + {raw['system_seconds']:.2f} s)",
                flush=True,
            )
    finally:
        shutil.rmtree(session, ignore_errors=True)
    events = sims[0]["events"]
    seconds = median_of(sims, "seconds")
    raw_rate = statistics.median(r["events"] / r["seconds"] for r in raws)
    rate = statistics.median(s["events"] / s["seconds"] for s in sims)
    pinned = f", pinned to CPU {args.cpu}" if args.cpu is not None else ""
    print(f"scale {args.scale}, seed {args.seed}, {args.repeat} runs, median{pinned}")
    print(f"  (a) raw template loop to files: {raw_rate:>10,.0f} events/s")
    user = median_of(sims, "user_seconds")
    print(
        f"  (b) simulate to files:           {rate:>10,.0f} events/s  ({events:,} events, {seconds:.2f} s wall, "
        f"CPU {user:.2f} s user ({user / events * 1e6:.1f} µs/event) "
        f"+ {median_of(sims, 'system_seconds'):.2f} s system, "
        f"{sims[0]['documents']:,} documents, "
        f"peak RSS {max(s['peak_rss_mb'] for s in sims):,.0f} MB)"
    )
    print(f"  b/a: {rate / raw_rate:.2f}   (aim: simulate >= 50,000 events/s)")
    if os.environ.get("BENCH_JSON"):
        print(json.dumps({"simulate": sims, "raw": raws}))


if __name__ == "__main__":
    main()
