"""The one bridge from the ledger to tensors.

``ShipmentGraph`` replays the ledger in sequence order (anomaly/ml/replay.py) from its own watermark up to
the derivation watermark, so it can be advanced incrementally after every capture. It keeps, per transfer,
the facts the rules read and the feature vector the models read, all computed from earlier ledger entries
only. ``arrays()`` returns the shipment graph (partners and lots as nodes, transfers as edges with their
features, times and sequence numbers) with the id maps needed to write scores back.

One graph is cached per process (a scoring worker keeps it warm); it checks on every use that the ledger
it replayed is still the ledger in the database, and rebuilds otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from anomaly import rules
from anomaly.ml.replay import UNKNOWN, Event, LedgerReplay, Party, TransferRecord, TransferStub
from provenance.epcis.identifiers import gln_of
from provenance.epcis.normalize import normalize_event
from provenance.models import CompanyPrefix, CustodyEvent, Location, Organization, Transfer, Watermark
from provenance.services import PartyResolver

logger = logging.getLogger(__name__)

CHUNK = 5000
_PARTY_TYPES = ("owning_party", "possessing_party", "location")
_KIND_MAP = {
    "manufacturer": "manufacturer",
    "repackager": "repackager",
    "wholesaler": "wholesaler",
    "3pl": "3pl",
    "dispenser": "dispenser",
    "hospital": "hospital",
}


def _days(moment: Any) -> float:
    return moment.timestamp() / 86400.0


class Directory:
    """Who a party identifier is, and where a location is: read once per replay chunk."""

    def __init__(self) -> None:
        self.resolver = PartyResolver()
        self.coords: dict[str, tuple[float, float]] = {}
        self.coords_by_gln: dict[str, tuple[float, float]] = {}
        self.coords_by_org: dict[int, tuple[float, float]] = {}
        self.parties: dict[str, Party] = {}
        self.prefix_owner: list[tuple[str, int]] = []
        self._owner_cache: dict[str, str | None] = {}
        self.refresh()

    def refresh(self) -> None:
        for sgln, gln, org_id, lat, lon in Location.objects.exclude(latitude=None).values_list(
            "sgln", "gln", "organization_id", "latitude", "longitude"
        ):
            if lat is None or lon is None:
                continue
            xy = (float(lat), float(lon))
            self.coords[sgln] = xy
            self.coords_by_gln.setdefault(gln, xy)
            if org_id is not None:
                self.coords_by_org.setdefault(org_id, xy)
        for org in Organization.objects.values("id", "kind", "licence_status", "authorized_trading_partner"):
            key = f"o{org['id']}"
            self.parties[key] = Party(
                key=key,
                kind=_KIND_MAP.get(org["kind"], "other"),
                licensed=org["licence_status"] == Organization.LicenceStatus.ACTIVE
                and bool(org["authorized_trading_partner"]),
                known=True,
            )
        self.prefix_owner = sorted(
            CompanyPrefix.objects.values_list("prefix", "organization_id"), key=lambda r: -len(r[0])
        )
        self._owner_cache.clear()

    def key(self, identifier: str | None) -> str:
        if not identifier:
            return UNKNOWN
        gln = gln_of(identifier)
        if not gln:
            return f"x:{identifier}"
        org_id = self.resolver.organization_id_for_gln(gln)
        return f"o{org_id}" if org_id is not None else f"g:{gln}"

    def xy(self, identifier: str | None, party_key: str = UNKNOWN) -> tuple[float, float] | None:
        if identifier:
            xy = self.coords.get(identifier)
            if xy is not None:
                return xy
            gln = gln_of(identifier)
            if gln and gln in self.coords_by_gln:
                return self.coords_by_gln[gln]
        if party_key.startswith("o"):
            return self.coords_by_org.get(int(party_key[1:]))
        return None

    def lot_owner(self, gtin: str) -> str | None:
        if gtin in self._owner_cache:
            return self._owner_cache[gtin]
        # GTIN-14: indicator digit, then the company prefix
        owner = next((f"o{org}" for prefix, org in self.prefix_owner if gtin[1:].startswith(prefix)), None)
        self._owner_cache[gtin] = owner
        return owner


def _party(entries: list[tuple[str, str]]) -> str | None:
    by_type = {t: v for t, v in entries}
    for type_ in _PARTY_TYPES:
        if type_ in by_type:
            return by_type[type_]
    return None


def _stub(t: Transfer, directory: Directory) -> TransferStub:
    from_key = f"o{t.from_organization_id}" if t.from_organization_id else directory.key(t.from_party)
    to_key = f"o{t.to_organization_id}" if t.to_organization_id else directory.key(t.to_party)
    return TransferStub(
        id=t.id,
        gtin=t.gtin,
        lot=t.lot_number,
        quantity=float(t.quantity),
        received_quantity=float(t.received_quantity) if t.received_quantity is not None else None,
        from_key=from_key,
        to_key=to_key,
        from_xy=directory.xy(t.from_location, from_key),
        to_xy=directory.xy(t.to_location, to_key),
        ship_t=_days(t.ship_time) if t.ship_time else None,
        receive_t=_days(t.receive_time) if t.receive_time else None,
        ship_seq=t.ship_seq,
        receive_seq=t.receive_seq,
    )


def to_event(
    row: CustodyEvent, directory: Directory, creates: list[TransferStub], receives: list[TransferStub]
) -> Event:
    n = normalize_event(row.body, row.context)
    source_party = _party(n.sources)
    dest_party = _party(n.destinations)
    source_loc = next((v for t, v in n.sources if t == "location"), None)
    dest_loc = next((v for t, v in n.destinations if t == "location"), None)
    at = n.biz_location or n.read_point
    step = n.biz_step or ""
    source = directory.key(source_party)
    dest = directory.key(dest_party)
    if step in ("receiving", "accepting"):
        dest = dest if dest != UNKNOWN else directory.key(at)
    elif step == "shipping":
        source = source if source != UNKNOWN else directory.key(at)
    actor = directory.key(at) if at else f"o{row.submitter_id}"
    return Event(
        seq=row.seq,
        event_id=row.event_id,
        t=_days(n.event_time),
        event_type=n.event_type,
        action=n.action or "",
        biz_step=step,
        disposition=n.disposition or "",
        epcs=n.epcs,
        quantities=[(role, cls, q) for role, cls, q, _uom in n.quantities],
        source=source,
        dest=dest,
        actor=actor,
        at_xy=directory.xy(at, actor),
        source_xy=directory.xy(source_loc or (at if step == "shipping" else None), source),
        dest_xy=directory.xy(dest_loc or (at if step in ("receiving", "accepting") else None), dest),
        lot=n.lot_number,
        expiry_t=(_days_of_date(n.expiry_date) + 1.0) if n.expiry_date else None,
        is_return=any(kind == "rma" for kind, _ in n.biz_transactions) or n.disposition == "returned",
        retraction=n.error_declaration is not None,
        retracts=_retracted_event_id(row, n.event_id) if n.error_declaration is not None else None,
        desadv=next((v for kind, v in n.biz_transactions if kind == "desadv"), None),
        creates=creates,
        receives=receives,
    )


def _retracted_event_id(row: CustodyEvent, event_id: str | None) -> str | None:
    """The eventID an errorDeclaration retracts: its own eventID, or (sent without one) the event with its hash."""
    if event_id:
        return event_id
    return (
        CustodyEvent.objects.filter(event_hash=row.event_hash, seq__lt=row.seq, is_error_declaration=False)
        .order_by("-seq")
        .values_list("event_id", flat=True)
        .first()
    )


def _days_of_date(d: Any) -> float:
    import datetime as dt

    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp() / 86400.0


@dataclass
class GraphArrays:
    """The shipment graph as arrays: ``arrays["transfer_id"][edge]`` maps an edge back to its Transfer, and a
    transfer's edge is ``ShipmentGraph.record(transfer_id).idx``."""

    arrays: dict[str, np.ndarray]
    clock: float

    @property
    def n_edges(self) -> int:
        return len(self.arrays["transfer_id"])


class ShipmentGraph:
    """The ledger replayed up to a watermark; advance() brings it up to the derivation watermark."""

    def __init__(self) -> None:
        self.directory = Directory()
        self.replay = LedgerReplay(
            parties=self.directory.parties, rules=rules.check, lot_owner=self.directory.lot_owner
        )
        self.fingerprint: str | None = None
        self._arrays: GraphArrays | None = None

    @property
    def seq(self) -> int:
        return self.replay.next_seq

    def still_valid(self) -> bool:
        if self.replay.next_seq == 0:
            return True
        event_id = CustodyEvent.objects.filter(seq=self.replay.next_seq - 1).values_list("event_id", flat=True).first()
        return event_id == self.fingerprint

    def advance(self, to_seq: int | None = None, *, progress: Any = None) -> int:
        """Replay ledger entries from the graph's watermark up to ``to_seq`` (default: the derivation watermark)."""
        if to_seq is None:
            to_seq = Watermark.objects.filter(name="derive").values_list("seq", flat=True).first() or 0
        done = 0
        refreshed = False
        while self.replay.next_seq < to_seq:
            lo = self.replay.next_seq
            hi = min(to_seq, lo + CHUNK)
            if not refreshed:
                self.directory.refresh()  # new partners and locations since the last run
                refreshed = True
            rows = list(
                CustodyEvent.objects.filter(seq__gte=lo, seq__lt=hi)
                .only("seq", "event_id", "event_hash", "body", "context", "submitter_id")
                .order_by("seq")
            )
            creates: dict[int, list[TransferStub]] = defaultdict(list)
            receives: dict[int, list[TransferStub]] = defaultdict(list)
            transfers = Transfer.objects.filter(ship_seq__gte=lo, ship_seq__lt=hi) | Transfer.objects.filter(
                receive_seq__gte=lo, receive_seq__lt=hi
            )
            for t in transfers.order_by("id"):
                stub = _stub(t, self.directory)
                if t.ship_seq is not None and lo <= t.ship_seq < hi:
                    creates[t.ship_seq].append(stub)
                if t.receive_seq is not None and lo <= t.receive_seq < hi:
                    if t.ship_seq is None:
                        creates[t.receive_seq].append(stub)  # a receipt with no recorded shipment
                    else:
                        receives[t.receive_seq].append(stub)
            for row in rows:
                self.replay.apply(to_event(row, self.directory, creates.get(row.seq, []), receives.get(row.seq, [])))
            self.replay.next_seq = max(self.replay.next_seq, hi)
            self.fingerprint = rows[-1].event_id if rows and rows[-1].seq == hi - 1 else self._event_id(hi - 1)
            done += len(rows)
            if progress is not None:
                progress(self.replay.next_seq, to_seq)
        if done:
            self._arrays = None
        return done

    @staticmethod
    def _event_id(seq: int) -> str | None:
        return CustodyEvent.objects.filter(seq=seq).values_list("event_id", flat=True).first()

    def age(self) -> list[int]:
        """Refresh the in-transit age of open transfers as of the ledger clock; returns the transfer ids changed."""
        changed = self.replay.age_open_transfers(self.replay.clock)
        if changed:
            self._arrays = None
        return changed

    def record(self, transfer_id: int) -> TransferRecord | None:
        return self.replay.records.get(transfer_id)

    def records(self, transfer_ids: Iterable[int]) -> list[TransferRecord]:
        return [r for r in (self.replay.records.get(i) for i in transfer_ids) if r is not None]

    def take_changed(self) -> set[int]:
        changed, self.replay.changed = self.replay.changed, set()
        return changed

    def arrays(self) -> GraphArrays:
        if self._arrays is None:
            self._arrays = GraphArrays(arrays=self.replay.edge_arrays(), clock=self.replay.clock)
        return self._arrays


_lock = threading.Lock()
_graph: ShipmentGraph | None = None


def shipment_graph(*, to_seq: int | None = None, progress: Any = None) -> ShipmentGraph:
    """The process's graph, advanced to at least ``to_seq`` (default: the derivation watermark).

    A process starts from the latest snapshot when it fits this database and this feature code (a scoring
    worker's restart replays only what came after it); the graph is rebuilt from the start when the ledger it
    replayed is no longer the one in the database (a new database)."""
    global _graph
    with _lock:
        if _graph is None:
            _graph = snapshot_load()
        if _graph is None or not _graph.still_valid():
            started = time.monotonic()
            _graph = ShipmentGraph()
            logger.info("shipment graph: rebuilding from the ledger")
            _graph.advance(to_seq, progress=progress)
            logger.info("shipment graph: %d entries replayed in %.1fs", _graph.seq, time.monotonic() - started)
        else:
            _graph.advance(to_seq, progress=progress)
        return _graph


def reset() -> None:
    global _graph
    with _lock:
        _graph = None


# ---------------------------------------------------------------------------------------------- snapshots
#
# A snapshot is the pickled replay state of this process's graph, written under MODEL_DIR (the directory the
# scoring and training workers share, trusted like the model checkpoints beside it). It names the database,
# the feature code and the ledger entry it ends with; a snapshot that does not fit all three is ignored.

SNAPSHOT_FILE = "shipment-graph.snapshot"
SNAPSHOT_EVERY = 20_000  # ledger entries replayed since the last snapshot before a sweep writes a new one


def _snapshot_path() -> Any:
    from pathlib import Path

    from django.conf import settings

    return Path(settings.MODEL_DIR) / SNAPSHOT_FILE


def _database_identity() -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"{connection.vendor}:{db.get('HOST') or ''}:{db.get('PORT') or ''}:{db.get('NAME')}"


def snapshot_save(*, force: bool = False) -> bool:
    """Write this process's graph to the snapshot file when it has moved on enough since the last one."""
    import os
    import pickle

    from anomaly.datasets import feature_version

    with _lock:
        graph = _graph
        if graph is None or graph.seq == 0:
            return False
        path = _snapshot_path()
        saved_seq = getattr(graph, "_snapshot_seq", 0)
        # about 2 kB per ledger entry: snapshots get rarer as the ledger grows (the writes stay linear in it)
        if not force and graph.seq - saved_seq < max(SNAPSHOT_EVERY, saved_seq // 4) and path.exists():
            return False
        started = time.monotonic()
        arrays, graph._arrays = graph._arrays, None  # derived, rebuilt on demand: not worth the bytes
        try:
            payload = {
                "feature_version": feature_version(),
                "database": _database_identity(),
                "seq": graph.seq,
                "fingerprint": graph.fingerprint,
                "graph": graph,
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            with tmp.open("wb") as out:
                pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        finally:
            graph._arrays = arrays
        graph._snapshot_seq = graph.seq  # type: ignore[attr-defined]
        logger.info("shipment graph: snapshot at ledger seq %d written in %.1fs", graph.seq, time.monotonic() - started)
        return True


def snapshot_load() -> ShipmentGraph | None:
    """The snapshot's graph if it was written for this database and this feature code, else None."""
    import pickle

    from anomaly.datasets import feature_version

    path = _snapshot_path()
    if not path.exists():
        return None
    try:
        with path.open("rb") as src:
            payload = pickle.load(src)  # noqa: S301 - written by this service's workers under MODEL_DIR
    except Exception:
        logger.warning("shipment graph: snapshot %s unreadable; replaying the ledger", path, exc_info=True)
        return None
    if payload.get("feature_version") != feature_version() or payload.get("database") != _database_identity():
        return None
    graph = payload.get("graph")
    if not isinstance(graph, ShipmentGraph) or not graph.still_valid():
        return None
    graph._snapshot_seq = graph.seq  # type: ignore[attr-defined]
    logger.info("shipment graph: resumed from the snapshot at ledger seq %d", graph.seq)
    return graph
