"""One tiny simulated run shared by the simulator tests, read back from disk and indexed."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provenance.epcis.identifiers import gs1_check_digit
from simulator.generate import generate
from simulator.scenarios import parse_scenarios

SEED = 7
BUSY_SEEDS = (305, 367, 11)  # 367 once sent one package twice in a shipment (KeyError in check_resale)


def key_of(uri: str) -> tuple[str, ...]:
    """A GS1 key in either EPC URN or Digital Link form, as a comparable tuple (scheme, digits...)."""
    if uri.startswith("https://id.gs1.org/"):
        parts = uri[len("https://id.gs1.org/") :].split("/")
        ai = parts[0]
        if ai == "01" and len(parts) >= 4 and parts[2] == "21":
            return ("sgtin", parts[1], parts[3])
        if ai == "01" and len(parts) >= 4 and parts[2] == "10":
            return ("lgtin", parts[1], parts[3])
        if ai == "00":
            return ("sscc", parts[1])
        if ai == "414":
            return ("sgln", parts[1], parts[3] if len(parts) > 3 else "0")
        if ai == "417":
            return ("pgln", parts[1])
        raise ValueError(uri)
    kind, body = uri.split(":")[3], uri.split(":", 4)[4]
    fields = body.split(".")
    if kind in ("sgtin", "lgtin"):
        cp, item, rest = fields[0], fields[1], ".".join(fields[2:])
        digits = item[0] + cp + item[1:]
        return (kind, digits + str(gs1_check_digit(digits)), rest)
    if kind == "sscc":
        cp, serial = fields
        digits = serial[0] + cp + serial[1:]
        return ("sscc", digits + str(gs1_check_digit(digits)))
    if kind in ("sgln", "pgln"):
        digits = fields[0] + fields[1]
        gln = digits + str(gs1_check_digit(digits))
        return ("sgln", gln, fields[2]) if kind == "sgln" else ("pgln", gln)
    raise ValueError(uri)


def gln_of(uri: str) -> str:
    return key_of(uri)[1]


@dataclass
class Run:
    out: Path
    manifest: dict[str, Any]
    partners: dict[str, Any]
    stats: dict[str, Any]
    documents: list[tuple[str, dict[str, Any]]]  # (file, document) in load order
    events: list[tuple[int, dict[str, Any], str]]  # (position, event, sender GLN) in load order
    labels: list[dict[str, Any]]
    lookalikes: list[dict[str, Any]]
    by_id: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    position: dict[int, int] = field(default_factory=dict)  # id(event) -> position
    by_epc: dict[tuple, list[dict[str, Any]]] = field(default_factory=dict)
    by_desadv: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    case_children: dict[tuple, list[tuple]] = field(default_factory=dict)
    location: dict[str, dict[str, Any]] = field(default_factory=dict)  # location GLN -> master data
    org_kind: dict[str, str] = field(default_factory=dict)  # party GLN -> kind
    tags: dict[str, set[str]] = field(default_factory=dict)  # eventID -> look-alike kinds

    def labels_of(self, scenario: str) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self.labels:
            if row["scenario"] == scenario:
                out[row["incident"]].append(row)
        return out

    def event(self, event_id: str, *, retraction: bool = False) -> dict[str, Any]:
        for e in self.by_id[event_id]:
            if ("errorDeclaration" in e) == retraction:
                return e
        raise KeyError(event_id)

    def epcs(self, event: dict[str, Any], expand: bool = True) -> list[tuple]:
        """Instance identifiers of an event, with SSCCs expanded to the packages packed in them."""
        raw = (
            (event.get("epcList") or [])
            + (event.get("childEPCs") or [])
            + (event.get("inputEPCList") or [])
            + (event.get("outputEPCList") or [])
        )
        keys = [key_of(u) for u in raw]
        if not expand:
            return keys
        out: list[tuple] = []
        stack = list(keys)
        while stack:
            k = stack.pop()
            if k[0] == "sscc":
                stack.extend(self.case_children.get(k, []))
            else:
                out.append(k)
        return out

    def sources(self, event: dict[str, Any], kind: str) -> list[str]:
        return [s["source"] for s in event.get("sourceList", []) if s["type"] == kind]

    def destinations(self, event: dict[str, Any], kind: str) -> list[str]:
        return [d["destination"] for d in event.get("destinationList", []) if d["type"] == kind]

    def desadv(self, event: dict[str, Any]) -> str:
        return next((b["bizTransaction"] for b in event.get("bizTransactionList", []) if b["type"] == "desadv"), "")


def read_run(out: Path) -> Run:
    manifest = json.loads((out / "manifest.json").read_text())
    partners = json.loads((out / "partners.json").read_text())
    stats = json.loads((out / "stats.json").read_text())
    with open(out / "documents.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    documents = [(r["file"], json.loads((out / r["file"]).read_text())) for r in rows]
    events = []
    for file_index, (_name, doc) in enumerate(documents):
        for e in doc["epcisBody"]["eventList"]:
            events.append((file_index, e, rows[file_index]["sender_gln"]))
    labels = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines() if line]
    lookalikes = [json.loads(line) for line in (out / "lookalikes.jsonl").read_text().splitlines() if line]
    run = Run(out, manifest, partners, stats, documents, events, labels, lookalikes)
    run.by_id = defaultdict(list)
    run.by_epc = defaultdict(list)
    run.by_desadv = defaultdict(list)
    for pos, (_f, e, _s) in enumerate(events):
        run.by_id[e["eventID"]].append(e)
        run.position[id(e)] = pos
        if e["type"] == "AggregationEvent" and e["action"] == "ADD":
            run.case_children[key_of(e["parentID"])] = [key_of(c) for c in e["childEPCs"]]
        if "errorDeclaration" in e:
            continue
        for k in run.epcs(e, expand=False):
            run.by_epc[k].append(e)
        d = run.desadv(e)
        if d:
            run.by_desadv[d].append(e)
    run.location = {loc["gln"]: loc for loc in partners["locations"]}
    run.org_kind = {o["gln"]: o["kind"] for o in partners["organizations"]}
    run.tags = defaultdict(set)
    for t in lookalikes:
        run.tags[t["event_id"]].add(t["kind"])
    return run


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "tiny"
    generate(seed=SEED, scale="tiny", out_dir=out)
    return out


@pytest.fixture(scope="session")
def tiny(tiny_dir: Path) -> Run:
    return read_run(tiny_dir)


def busy_scenarios(rate_scale: float = 20.0) -> str:
    """Every scenario at many times its default rate (as ``simulate --rate-scale``)."""
    knobs = parse_scenarios("all", rate_scale=rate_scale)
    return ",".join(f"{n}:rate={k.rate}:subtlety={k.subtlety}:camouflage={k.camouflage}" for n, k in knobs.items())


@pytest.fixture(scope="session", params=BUSY_SEEDS, ids=lambda s: f"busy{s}")
def busy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Tiny runs with every scenario at 20 times its rate: many incidents, overlapping in the same network."""
    out = tmp_path_factory.mktemp("busy") / str(request.param)
    generate(seed=request.param, scale="tiny", out_dir=out, scenarios=busy_scenarios())
    return read_run(out)
