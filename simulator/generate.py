"""One simulation run, end to end: network, life of the goods, scenarios, output files.

``generate(seed=…, scale=…, out_dir=…)`` is what the ``simulate`` command calls. Output layout
(``out_dir``):

    manifest.json        seed, scale, counts, scenario knobs, incidents (with what they involve), generator version
    speed.json           wall-clock seconds and events/s of the whole run (the one file that varies)
    partners.json        master data: organizations, locations, products, lots
    documents/YYYY-MM/NNNNNNN_<gln>.json   EPCIS 2.0 documents (<= 1,000 events), in load order
    documents.csv        the documents in load order: file, sender GLN, events, first eventTime
    labels.jsonl         ground truth: one row per labelled event (event_id, scenario, ...)
    lookalikes.jsonl     benign look-alikes and noise: one row per tagged event (event_id, kind, ...)
    stats.json           tallies for the report (steps, edges, volumes, scenario shares)

No Django here.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.engine import SimConfig, Simulation
from simulator.events import Clock
from simulator.geo import load_geography
from simulator.network import SCALES, build_network
from simulator.output import Sink
from simulator.scenarios import ScenarioBook, parse_scenarios

GENERATOR_VERSION = "1.0.0"
DEFAULT_START = dt.date(2025, 3, 3)
# Events per dispensed package, measured per scale so the totals land near the targets (large: estimated from
# a 60-day run when its catalogue was cut to 42 products, to keep its total near the 11.3M measured before).
EVENTS_PER_PACKAGE = {"tiny": 1.25, "small": 1.24, "medium": 1.30, "large": 1.43}
CREDIT = (
    "Geography and demand derived from The Washington Post's ARCOS API support tables "
    "(github.com/wpinvestigative/arcos-api, ODbL 1.0); underlying data: DEA ARCOS. Business names are synthetic."
)


@dataclass
class RunResult:
    out_dir: Path | None
    manifest: dict[str, Any]
    partners: dict[str, Any]
    stats: dict[str, Any]
    documents: list[tuple[int, bytes]] = field(default_factory=list)  # (org idx, body) when out_dir is None
    labels: list[dict] = field(default_factory=list)
    lookalikes: list[dict] = field(default_factory=list)

    @property
    def events(self) -> int:
        return int(self.manifest["counts"]["events"])

    @property
    def events_per_second(self) -> float:
        return float(self.manifest["speed"]["events_per_second"])


def run_id(seed: int, scale: str, scenarios: str) -> str:
    return f"sim-{scale}-{seed}" + ("" if scenarios in ("all", "") else f"-{abs(hash_text(scenarios)) % 10**8:08d}")


def hash_text(text: str) -> int:
    # stable across processes (str hash is salted)
    h = 1469598103934665603
    for ch in text.encode():
        h = ((h ^ ch) * 1099511628211) % 2**64
    return h


def generate(
    *,
    seed: int,
    scale: str = "tiny",
    out_dir: Path | None = None,
    scenarios: str = "all",
    start: dt.date = DEFAULT_START,
    days: int | None = None,
    noise: float = 1.0,
    missing: float = 1.0,
    late: float = 1.0,
    events: int | None = None,
    progress: Any = None,
) -> RunResult:
    """Generate one run. ``events`` overrides the scale's target number of events (approximate)."""
    # A run builds millions of long-lived objects and no reference cycles (a small run leaves none for the
    # collector), so the cyclic garbage collector would only rescan live objects: a quarter of the time at medium.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _generate(
            seed=seed,
            scale=scale,
            out_dir=out_dir,
            scenarios=scenarios,
            start=start,
            days=days,
            noise=noise,
            missing=missing,
            late=late,
            events=events,
            progress=progress,
        )
    finally:
        if collecting:
            gc.enable()


def _generate(
    *,
    seed: int,
    scale: str,
    out_dir: Path | None,
    scenarios: str,
    start: dt.date,
    days: int | None,
    noise: float,
    missing: float,
    late: float,
    events: int | None,
    progress: Any,
) -> RunResult:
    t0 = time.perf_counter()
    spec = SCALES[scale]
    n_days = days or spec.days
    target = spec.target_events if days is None else int(spec.target_events * n_days / spec.days)
    if events is not None:
        target = events
    geo = load_geography()
    net = build_network(seed, spec, geo)
    clock = Clock(start, n_days)
    rid = run_id(seed, scale, scenarios)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    sink = Sink(out_dir, net.orgs, clock, rid, seed)
    knobs = parse_scenarios(scenarios)
    book = ScenarioBook(knobs, seed, target)
    cfg = SimConfig(
        seed=seed,
        days=n_days,
        start=start,
        target_events=target,
        noise=noise,
        missing=missing,
        late=late,
        events_per_package=EVENTS_PER_PACKAGE[scale],
    )
    sim = Simulation(net, cfg, sink, scenarios=book)
    sim.run(progress)

    partners = master_data(sim)
    stats = tallies(sim)
    manifest = {
        "generator": "simulator",
        "generator_version": GENERATOR_VERSION,
        "run": rid,
        "seed": seed,
        "scale": scale,
        "start": start.isoformat(),
        "days": n_days,
        "region_states": list(net.region_states),
        "target_events": target,
        "counts": {
            "events": sink.events_written,
            "documents": sink.document_count,
            "labelled_events": sink.labels_written,
            "lookalike_tags": sink.tags_written,
            "organizations": len(net.orgs),
            "locations": len(net.locs),
            "products": len(net.products),
            "lots": len(sim.lots),
            "packages": len(sim.pkg_prod),
            "late_events": sink.late_events,
            "error_declarations": sink.error_declarations,
        },
        "scenarios": {name: k.as_dict() for name, k in knobs.items()},
        "incidents": book.summary(dict(sink.incident_events), sim),
        "noise": {
            "multiplier": noise,
            "missing_multiplier": missing,
            "late_multiplier": late,
            "clock_skew_partners": sorted(o.gln for o in net.orgs if o.skew_ms),
        },
        "files": {
            "partners": "partners.json",
            "documents_index": "documents.csv",
            "labels": "labels.jsonl",
            "lookalikes": "lookalikes.jsonl",
            "stats": "stats.json",
        },
        "labels_columns": [
            "event_id",
            "scenario",
            "incident",
            "role",
            "transfer_key",
            "start_time",
            "event_time",
            "camouflaged",
            "subtlety",
            "seed",
            "run",
        ],
        "transfer_key": (
            "the despatch-advice bizTransaction URI of the shipment (present in its shipping and receiving events)"
        ),
        "credit": CREDIT,
    }
    if out_dir is not None:
        _write_json(out_dir / "partners.json", partners)
        _write_json(out_dir / "stats.json", stats)
        _write_json(out_dir / "manifest.json", manifest)
    # the whole run, files included (speed.json itself excepted); it varies between runs, so it is kept out of
    # the byte-identical files
    elapsed = time.perf_counter() - t0
    manifest["speed"] = {
        "seconds": round(elapsed, 2),
        "events_per_second": round(sink.events_written / max(elapsed, 1e-9)),
    }
    if out_dir is not None:
        _write_json(out_dir / "speed.json", manifest["speed"])
    return RunResult(out_dir, manifest, partners, stats, sink.memory_docs, sink.label_rows, sink.tag_rows)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def master_data(sim: Simulation) -> dict[str, Any]:
    net = sim.net
    orgs = [
        {
            "name": o.name,
            "gln": o.gln,
            "kind": o.kind,
            "role": o.role,
            "company_prefixes": [o.prefix],
            "licence_number": o.licence_number,
            "licence_state": o.licence_state,
            "licence_status": o.licence_status,
            "authorized": o.authorized,
            "identifier_form": "digital_link" if o.digital_link else "urn",
        }
        for o in net.orgs
    ]
    locs = [
        {
            "sgln": loc.sgln[0],
            "sgln_digital_link": loc.sgln[1],
            "gln": loc.gln,
            "organization_gln": net.orgs[loc.org].gln,
            "name": loc.name,
            "role": loc.role,
            "lat": loc.lat,
            "lon": loc.lon,
            "county_fips": loc.county,
            "state": loc.state,
        }
        for loc in net.locs
    ]
    products = [
        {
            "gtin": p.gtin,
            "ndc": p.ndc,
            "name": p.name,
            "manufacturer_gln": net.orgs[p.mfr].gln,
            "schedule": p.schedule,
            "high_value": p.value_tier == 2,
            "cold_chain": p.cold,
            "units_per_case": p.case_size,
            "repackaged_from_gtin": net.products[p.repack_of].gtin if p.repack_of >= 0 else "",
        }
        for p in net.products
    ]
    lots = [
        {"gtin": net.products[lot.prod].gtin, "lot": lot.number, "expiry": lot.expiry, "size": lot.size}
        for lot in sim.lots
        if lot.size > 0 and not lot.phantom
    ]
    return {"organizations": orgs, "locations": locs, "products": products, "lots": lots}


def tallies(sim: Simulation) -> dict[str, Any]:
    sink, net = sim.sink, sim.net
    kind_volume: dict[str, dict[str, int]] = {}
    for (src, dst), (shipments, packages) in sink.edges.items():
        for side, li in (("out", src), ("in", dst)):
            kind = net.orgs[net.locs[li].org].kind
            v = kind_volume.setdefault(
                kind, {"shipments_out": 0, "packages_out": 0, "shipments_in": 0, "packages_in": 0}
            )
            v[f"shipments_{side}"] += shipments
            v[f"packages_{side}"] += packages
    for (kind, step), n in sink.by_kind_step.items():
        if step == "dispensing":
            kind_volume.setdefault(kind, {"shipments_out": 0, "packages_out": 0, "shipments_in": 0, "packages_in": 0})
            kind_volume[kind]["dispensing_events"] = kind_volume[kind].get("dispensing_events", 0) + n
    return {
        "events": sink.events_written,
        "by_biz_step": dict(sorted(sink.by_step.items())),
        "by_kind_and_biz_step": {f"{k}/{s}": n for (k, s), n in sorted(sink.by_kind_step.items())},
        "volume_by_kind": dict(sorted(kind_volume.items())),
        "edges": [
            {"from": net.locs[a].gln, "to": net.locs[b].gln, "shipments": s, "packages": p}
            for (a, b), (s, p) in sorted(sink.edges.items())
        ],
        "scenario_events": dict(sorted(sink.scenario_events.items())),
        "scenario_camouflaged_events": dict(sorted(sink.scenario_camo.items())),
        "lookalikes": dict(sorted(sink.tag_counts.items())),
        "late_events": sink.late_events,
        "error_declarations": sink.error_declarations,
        "lost_sales": sim.counts.get("lost_sales", 0),
        "packages": len(sim.pkg_prod),
    }
