"""Replay of the custody ledger in sequence order: per-serial state, per-lot state, and per-transfer facts
and features computed from strictly earlier ledger entries (no look-ahead).

This is pure Python (no Django, no torch). ``anomaly.graph`` reads the ledger and feeds it here; training,
evaluation and serving all go through the same replay, so a transfer gets the same features whether it is
scored seconds after capture or in a bulk re-run.

Time is in days (float) since the Unix epoch. A transfer is *created* at its first ledger entry (its shipment,
or its receipt when no shipment was recorded) and *completed* at its receipt. History features are taken at
creation from the state left by earlier entries; the transfer's own receipt adds its receipt features later.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anomaly.rules import RULES

RULE_CODES = tuple(RULES)

INACTIVE = frozenset({"dispensed", "decommissioned", "destroyed", "stolen"})
STATE_BY_STEP = {
    "commissioning": "active",
    "shipping": "in_transit",
    "receiving": "received",
    "accepting": "received",
    "dispensing": "dispensed",
    "retail_selling": "dispensed",
    "decommissioning": "decommissioned",
    "destroying": "destroyed",
}
NONSELLABLE = frozenset(
    {
        "returned",
        "recalled",
        "expired",
        "damaged",
        "destroyed",
        "disposed",
        "non_sellable_other",
        "non_sellable_expired",
        "non_sellable_damaged",
        "non_sellable_recalled",
        "non_sellable_disposed",
        "non_sellable_no_pedigree_match",
        "non_sellable_quarantine",
        "recalled_returned",
        "stolen",
    }
)
KINDS = ("manufacturer", "repackager", "wholesaler", "3pl", "dispenser", "hospital", "other")
KIND_RANK = {"manufacturer": 0, "repackager": 1, "wholesaler": 2, "3pl": 2, "dispenser": 3, "hospital": 3, "other": 2}
UNKNOWN = "?"  # party key of an unidentified party

# Features of a transfer, in order. "c_" are known at creation, "r_" at receipt (0 until then).
CREATE_FEATURES = [
    "c_log_qty",
    "c_n_serials_log",
    "c_frac_uncommissioned",
    "c_frac_inactive",
    "c_frac_custody_conflict",
    "c_frac_lot_mismatch",
    "c_frac_recommissioned",
    "c_frac_returned_to_prior",
    "c_frac_tainted",
    "c_serial_speed_log",
    "c_serial_backwards_h",
    "c_lot_known",
    "c_lot_by_brand",
    "c_days_to_expiry",
    "c_lot_age_days",
    "c_lot_expired",
    "c_lot_recalled",
    "c_deficit_ratio",
    "c_sender_hop",
    "c_sender_had_lot",
    "c_from_unknown",
    "c_to_unknown",
    "c_from_unlicensed",
    "c_to_unlicensed",
    "c_log_distance",
    "c_is_return",
    "c_nonsellable",
    "c_to_brand",
    "c_received_only",
    *[f"c_from_{k}" for k in KINDS],
    *[f"c_to_{k}" for k in KINDS],
    "c_direction",
    "h_from_age_days",
    "h_to_age_days",
    "h_from_new",
    "h_to_new",
    "h_from_out_log",
    "h_from_in_log",
    "h_to_in_log",
    "h_to_out_log",
    "h_from_customers_log",
    "h_to_suppliers_log",
    "h_to_suppliers_30d",
    "h_pair_log",
    "h_pair_first",
    "h_pair_days_since",
    "h_pair_reverse_log",
    "h_pair_product_log",
    "h_to_in_qty_14d_log",
    "h_to_in_qty_vs_own",
    "h_to_in_qty_vs_kind",
    "h_to_product_qty_vs_own",
    "h_to_product_qty_vs_kind",
    "h_from_out_qty_vs_own",
    "h_qty_vs_pair",
    "h_qty_vs_sender",
    "h_from_hit_rate_out",
    "h_from_hit_rate_in",
    "h_to_hit_rate_in",
    "h_from_in_new_frac",
    "h_from_in_unlicensed_frac",
    "h_to_receipt_rate",
    "h_from_returns_frac",
    "h_lot_holders_log",
    "h_lot_transfers_log",
    "h_rule_hits",
    "c_sibling_hits",
    "c_sibling_unknown_frac",
    "c_frac_intercepted",
    "c_intercepted_days_log",
    "c_sibling_tainted_frac",
]
RECEIPT_FEATURES = [
    "r_received",
    "r_recv_ratio",
    "r_recv_over",
    "r_transit_log_h",
    "r_transit_vs_lane",
    "r_before_shipped_h",
    "r_speed_log",
    "r_frac_uncommissioned",
    "r_frac_inactive",
    "r_frac_custody_conflict",
    "r_serial_speed_log",
    "r_frac_tainted",
    "r_open_days",
    "r_overdue_vs_lane",
    "r_rule_hits",
    "r_sibling_hits",
    "r_sibling_unknown_frac",
    "r_frac_intercepted",
    "r_surfaced_elsewhere",
    "r_voided",
    "r_overtaken",
]
# Neighbour aggregates (GADBench's XGBGraph recipe, time-respecting): mean and max of these creation features
# over the earlier transfers into the sender (where its goods came from), into the receiver (who else sells to
# it) and of the same lot.
AGG_SOURCE = [
    "c_frac_tainted",
    "c_frac_uncommissioned",
    "c_frac_inactive",
    "c_frac_custody_conflict",
    "c_frac_intercepted",
    "c_frac_lot_mismatch",
    "c_lot_recalled",
    "c_lot_expired",
    "c_deficit_ratio",
    "c_from_unlicensed",
    "h_from_new",
    "h_pair_first",
    "c_is_return",
    "h_rule_hits",
]
AGG_GROUPS = ("src_in", "dst_in", "lot")
AGG_FEATURES = [f"a_{g}_{stat}_{name[2:]}" for g in AGG_GROUPS for stat in ("mean", "max") for name in AGG_SOURCE] + [
    f"a_{g}_count_log" for g in AGG_GROUPS
]
# One indicator per deterministic rule, as the transfer's hits stand now (rules are features of every model).
RULE_FEATURES = [f"k_{code}" for code in RULE_CODES]
FEATURES = CREATE_FEATURES + RECEIPT_FEATURES + AGG_FEATURES + RULE_FEATURES
N_CREATE = len(CREATE_FEATURES)
N_RECEIPT = len(RECEIPT_FEATURES)
N_FEATURES = len(FEATURES)
_CI = {name: i for i, name in enumerate(CREATE_FEATURES)}
_RI = {name: i for i, name in enumerate(RECEIPT_FEATURES)}
_AGG_IDX = np.array([_CI[name] for name in AGG_SOURCE])
_A0 = N_CREATE + N_RECEIPT
_K0 = _A0 + len(AGG_FEATURES)
_KI = {code: _K0 + i for i, code in enumerate(RULE_CODES)}
OWN_FEATURES = [f for f in FEATURES if f.startswith(("c_", "r_", "k_"))]  # the transfer itself, no history


def kind_of(kind: str) -> str:
    return kind if kind in KIND_RANK else "other"


def haversine_km(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float:
    if a is None or b is None:
        return -1.0
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(h)))


@dataclass(slots=True)
class Party:
    """What the registry says about a party (an organization, or an unidentified identifier)."""

    key: str
    kind: str = "other"
    licensed: bool = True
    known: bool = True
    prefixes: tuple[str, ...] = ()


@dataclass(slots=True)
class TransferStub:
    """A derived transfer as the ledger entry at hand sees it."""

    id: int
    gtin: str
    lot: str
    quantity: float
    received_quantity: float | None
    from_key: str
    to_key: str
    from_xy: tuple[float, float] | None
    to_xy: tuple[float, float] | None
    ship_t: float | None
    receive_t: float | None
    ship_seq: int | None
    receive_seq: int | None


@dataclass(slots=True)
class Event:
    """One ledger entry reduced to what the replay needs (identifiers canonical, parties as keys)."""

    seq: int
    event_id: str
    t: float
    event_type: str
    action: str
    biz_step: str
    disposition: str
    epcs: list[tuple[str, str]]
    quantities: list[tuple[str, str, float | None]]
    source: str
    dest: str
    actor: str
    at_xy: tuple[float, float] | None
    source_xy: tuple[float, float] | None
    dest_xy: tuple[float, float] | None
    lot: str | None = None
    expiry_t: float | None = None
    is_return: bool = False
    retraction: bool = False
    retracts: str | None = None
    desadv: str | None = None
    creates: list[TransferStub] = field(default_factory=list)
    receives: list[TransferStub] = field(default_factory=list)


class _Serial:
    __slots__ = (
        "commissioned",
        "commissioner",
        "custodian",
        "expiry_t",
        "inactive_by",
        "last_lot",
        "lot",
        "prior",
        "recommissioned",
        "ship_event",
        "status",
        "t",
        "taint",
        "xy",
    )

    def __init__(self) -> None:
        self.taint = 0  # rule hits of the transfers this pack was in (its lineage)
        self.commissioned = False
        self.lot: str | None = None  # as first commissioned (the brand owner's record)
        self.last_lot: str | None = None  # as last commissioned (what a relabelled pack says)
        self.expiry_t: float | None = None
        self.commissioner: str | None = None
        self.recommissioned = False
        self.status = ""
        self.custodian: str | None = None
        self.prior: tuple[str, ...] = ()
        self.xy: tuple[float, float] | None = None
        self.t: float | None = None
        self.inactive_by: str | None = None
        self.ship_event: str | None = None  # the shipping event that moved it, until it is received


class _Lot:
    __slots__ = ("commissioner", "expiry_t", "holders", "known", "made_t", "recalled_t", "transfers")

    def __init__(self) -> None:
        self.known = False
        self.expiry_t: float | None = None
        self.made_t: float | None = None
        self.commissioner: str | None = None
        self.recalled_t: float | None = None
        self.holders: set[str] = set()
        self.transfers = 0


class _Window:
    """A running sum over the last ``days`` (amortised O(1) per transfer)."""

    __slots__ = ("days", "items", "sum")

    def __init__(self, days: float) -> None:
        self.days = days
        self.items: deque[tuple[float, float]] = deque()
        self.sum = 0.0

    def add(self, t: float, value: float) -> None:
        self.items.append((t, value))
        self.sum += value

    def total(self, t: float) -> float:
        while self.items and self.items[0][0] < t - self.days:
            self.sum -= self.items.popleft()[1]
        return max(self.sum, 0.0)


class _DistinctWindow:
    """How many distinct keys were seen in the last ``days``."""

    __slots__ = ("counts", "days", "items")

    def __init__(self, days: float) -> None:
        self.days = days
        self.items: deque[tuple[float, str]] = deque()
        self.counts: dict[str, int] = {}

    def add(self, t: float, key: str) -> None:
        self.items.append((t, key))
        self.counts[key] = self.counts.get(key, 0) + 1

    def count(self, t: float) -> int:
        while self.items and self.items[0][0] < t - self.days:
            _, key = self.items.popleft()
            left = self.counts[key] - 1
            if left:
                self.counts[key] = left
            else:
                del self.counts[key]
        return len(self.counts)


class _PartyHistory:
    __slots__ = (
        "customers",
        "first_t",
        "hits_in",
        "hits_out",
        "in_from_new",
        "in_from_unlicensed",
        "in_qty_total",
        "in_received",
        "in_recent",
        "n_in",
        "n_out",
        "out_logqty_sum",
        "out_qty_total",
        "out_recent",
        "returns_out",
        "suppliers",
        "suppliers_30d",
    )

    def __init__(self, t: float) -> None:
        self.first_t = t
        self.n_out = 0
        self.n_in = 0
        self.customers: set[str] = set()
        self.suppliers: dict[str, float] = {}
        self.in_recent = _Window(WINDOW_DAYS)
        self.out_recent = _Window(WINDOW_DAYS)
        self.suppliers_30d = _DistinctWindow(30.0)
        self.in_qty_total = 0.0
        self.out_qty_total = 0.0
        self.out_logqty_sum = 0.0
        self.hits_out = 0
        self.hits_in = 0
        self.in_from_new = 0
        self.in_from_unlicensed = 0
        self.in_received = 0
        self.returns_out = 0


@dataclass
class TransferRecord:
    """What the replay knows about one transfer; ``x`` is its feature vector (creation + receipt parts)."""

    id: int
    idx: int
    from_key: str
    to_key: str
    lot_key: tuple[str, str]
    t_create: float
    seq_create: int
    x: np.ndarray
    seq_receive: int | None = None
    t_receive: float | None = None
    ship_t: float | None = None
    facts: dict[str, float] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    open_days: float = 0.0
    retracted: bool = False


RuleFn = Callable[[dict[str, float]], list[str]]
WINDOW_DAYS = 14.0
NEW_PARTNER_DAYS = 30.0


class LedgerReplay:
    """Consumes ledger events in sequence order and keeps the state the rules and models need."""

    def __init__(self, *, parties: dict[str, Party], rules: RuleFn, lot_owner: Callable[[str], str | None]) -> None:
        self.parties = parties
        self.rules = rules
        self.lot_owner = lot_owner  # gtin -> party key of the brand owner (company prefix), if registered
        self.next_seq = 0
        self.clock = 0.0  # latest event time seen (the ledger's own clock)
        self.serials: dict[str, _Serial] = {}
        self.children: dict[str, set[str]] = {}
        self.lots: dict[tuple[str, str], _Lot] = {}
        self.balance: dict[tuple[str, str, str], float] = {}
        self.hop: dict[tuple[str, str, str], int] = {}
        self.history: dict[str, _PartyHistory] = {}
        self.pairs: dict[tuple[str, str], list[float]] = {}  # n, last_t, sum log qty, n transit, sum log transit
        self.pair_product: dict[tuple[str, str, str], int] = {}
        self.kind_in_qty: dict[str, list[float]] = {}  # kind -> [n, sum of log1p(14-day inbound qty)]
        self.product_in: dict[tuple[str, str], list] = {}  # (receiver, gtin) -> [14-day window, total, first t]
        self.kind_product_in: dict[tuple[str, str], list[float]] = {}
        self.band_transit: dict[int, list[float]] = {}  # distance band -> [n, sum log transit h]
        self.lane_received: dict[tuple[str, str], float] = {}  # lane -> ship time of its latest received shipment
        self.records: dict[int, TransferRecord] = {}
        self.order: list[int] = []  # transfer ids in creation order (edge index)
        self.changed: set[int] = set()
        # Shipments by despatch advice: a receipt names the shipment it receives (transit time, counts).
        self.shipments: dict[str, tuple[float, tuple[float, float] | None, dict[str, int]]] = {}
        self.transfers_of_event: dict[str, list[int]] = {}
        # What each recent custody event changed, so that a retraction (errorDeclaration) can undo it.
        self.undo: dict[str, tuple[float, list[tuple[str, tuple]]]] = {}
        self._undo_pruned_at = 0.0
        self.pending_unknown: dict[str, list[int]] = {}  # serial seen uncommissioned -> transfers it was in
        self.surfaced_by: dict[str, list[tuple[int, int]]] = {}  # event -> (transfer, packs) it showed taken
        self.agg_in: dict[str, list] = {}  # party -> [count, sum, max] of AGG_SOURCE over transfers into it
        self.agg_lot: dict[tuple[str, str], list] = {}
        self._dirty: set[int] = set()
        self._store: dict[str, Any] = {"n": 0, "cap": 0, "node_of": {}, "lot_of": {}}

    # ------------------------------------------------------------------ public

    def apply(self, event: Event) -> None:
        if event.seq < self.next_seq:
            return  # already applied: replays are idempotent per entry
        self.next_seq = event.seq + 1
        self.clock = max(self.clock, event.t)
        if event.retraction:
            self._retract(event)
            return
        step = event.biz_step
        if (
            step == "commissioning"
            or event.event_type == "TransformationEvent"
            or (event.event_type == "ObjectEvent" and event.action == "ADD" and event.lot)
        ):
            self._commission(event)
        if event.event_type == "AggregationEvent" and event.action in ("ADD", "DELETE"):
            self._aggregate(event)
        if event.disposition == "recalled" and step not in ("shipping", "receiving"):
            for _role, cls, _q in event.quantities:
                lot = self._lot_of_class(cls)
                if lot is not None:
                    state = self.lots.setdefault(lot, _Lot())
                    state.recalled_t = state.recalled_t if state.recalled_t is not None else event.t
        if step == "void_shipping":
            self._void(event)
        elif step == "shipping" or step in ("receiving", "accepting") or event.creates or event.receives:
            self._custody(event)
        elif step in STATE_BY_STEP:
            status = STATE_BY_STEP[step]
            gone = status in INACTIVE and event.actor != UNKNOWN
            for sgtin in self._contents(event):
                s = self.serials.get(sgtin)
                if s is None:
                    s = self.serials[sgtin] = _Serial()
                if gone and s.status not in INACTIVE and s.lot:
                    key = (event.actor, self._gtin_of(sgtin), s.lot)
                    self.balance[key] = self.balance.get(key, 0.0) - 1.0
                if status in INACTIVE:
                    s.inactive_by = event.actor
                s.status = status
                if s.t is None or event.t >= s.t:  # where and when it was last seen, never moved back in time
                    s.t = event.t
                    s.xy = event.at_xy or s.xy
            if gone:
                for _role, cls, q in event.quantities:
                    lot = self._lot_of_class(cls)
                    if lot is not None:
                        key = (event.actor, lot[0], lot[1])
                        self.balance[key] = self.balance.get(key, 0.0) - (q or 0.0)

    def _retract(self, event: Event) -> None:
        """An errorDeclaration: the transfers of the retracted event stop counting, and serials it moved go back."""
        if not event.retracts:
            return
        for tid in self.transfers_of_event.get(event.retracts, []):
            rec = self.records.get(tid)
            if rec is not None and not rec.retracted:
                rec.retracted = True
                self._touch(tid)
        for tid, n in self.surfaced_by.pop(event.retracts, ()):
            rec = self.records.get(tid)
            if rec is not None:
                self._set_surfaced(rec, rec.facts.get("surfaced_elsewhere", 0) - n)
        entry = self.undo.pop(event.retracts, None)
        if entry is None:
            return
        when, snapshots = entry
        for sgtin, before in snapshots:
            s = self.serials.get(sgtin)
            if s is not None and s.t == when:  # untouched since the retracted event
                s.custodian, s.prior, s.status, s.xy, s.t = before

    def _void(self, event: Event) -> None:
        """A void_shipping event: the shipment never left, so its packs stay with the shipper and its transfers are
        closed (neither overdue nor a sign that someone else took them)."""
        voided: set[str] = set()
        for sgtin in self._contents(event):
            s = self.serials.get(sgtin)
            if s is None or s.status != "in_transit" or not s.ship_event:
                continue
            voided.add(s.ship_event)
            s.custodian = s.prior[-1] if s.prior else (event.actor if event.actor != UNKNOWN else s.custodian)
            s.prior = s.prior[:-1]
            s.status = "received"
            s.ship_event = None
        r = N_CREATE + _RI["r_voided"]
        for eid in voided:
            for tid in self.transfers_of_event.get(eid, ()):
                rec = self.records.get(tid)
                if rec is None or rec.seq_receive is not None:
                    continue
                rec.facts["voided"] = 1.0
                rec.x[r] = 1.0
                rec.open_days = 0.0
                rec.x[N_CREATE + _RI["r_open_days"]] = 0.0
                rec.x[N_CREATE + _RI["r_overdue_vs_lane"]] = 0.0
                rec.facts.pop("open_days", None)
                self._rehit(rec)

    def _remember(self, event: Event, snapshots: list[tuple[str, tuple]]) -> None:
        self.undo[event.event_id] = (event.t, snapshots)
        if event.t - self._undo_pruned_at > 7.0:  # retractions come within days: keep about two months
            self._undo_pruned_at = event.t
            self.undo = {k: v for k, v in self.undo.items() if v[0] >= event.t - 60.0}

    def age_open_transfers(self, as_of: float) -> list[int]:
        """Update the open-days features of transfers still in transit as of the ledger clock; returns those changed."""
        changed = []
        for tid in self.order:
            rec = self.records[tid]
            if rec.seq_receive is not None or rec.ship_t is None or rec.facts.get("voided"):
                continue
            days = max(0.0, as_of - rec.ship_t)
            if int(days) > int(rec.open_days):
                rec.open_days = days
                self._set_open(rec)
                self._touch(tid)
                changed.append(tid)
        return changed

    # ------------------------------------------------------------------ ledger state

    def _lot_of_class(self, cls: str) -> tuple[str, str] | None:
        # https://id.gs1.org/01/<gtin>/10/<lot>
        if "/01/" not in cls or "/10/" not in cls:
            return None
        parts = cls.split("/")
        try:
            return parts[parts.index("01") + 1], parts[parts.index("10") + 1]
        except (ValueError, IndexError):
            return None

    @staticmethod
    def _gtin_of(epc: str) -> str:
        parts = epc.split("/")
        try:
            return parts[parts.index("01") + 1]
        except (ValueError, IndexError):
            return ""

    def _commission(self, event: Event) -> None:
        roles = ("epc", "output") if event.event_type == "TransformationEvent" else ("epc",)
        who = event.actor
        for role, epc in event.epcs:
            if role not in roles or "/21/" not in epc:
                continue
            s = self.serials.get(epc)
            if s is None:
                s = self.serials[epc] = _Serial()
            if s.commissioned:
                if who != s.commissioner or (event.lot and event.lot != s.lot):
                    s.recommissioned = True
                if event.lot:
                    s.last_lot = event.lot
                continue
            s.commissioned = True
            s.lot = s.last_lot = event.lot
            s.expiry_t = event.expiry_t
            s.commissioner = who
            if s.custodian is None:  # a commissioning uploaded after the pack moved does not move it back
                s.status = "active"
                s.custodian = who
                s.xy = event.at_xy
                s.t = event.t
            for tid in self.pending_unknown.pop(epc, ()):
                self._now_commissioned(tid)
            if event.lot:
                self._lot_made(self._gtin_of(epc), event.lot, event, who, 1.0)
        for role, cls, q in event.quantities:
            if role in ("class", "output_class") and event.action in ("ADD", "", None):
                lot = self._lot_of_class(cls)
                if lot is not None:
                    self._lot_made(lot[0], lot[1], event, who, q or 0.0)
        if event.event_type == "TransformationEvent":
            for role, epc in event.epcs:
                if role == "input" and epc in self.serials:
                    self.serials[epc].status = "decommissioned"

    def _now_commissioned(self, tid: int) -> None:
        """A serial seen uncommissioned in a transfer has been commissioned since (a late upload): rescore it."""
        rec = self.records.get(tid)
        if rec is None:
            return
        n = max(rec.facts.get("serials", 0), 1)
        left = max(rec.facts.get("uncommissioned_serials", 0) - 1, 0)
        rec.facts["uncommissioned_serials"] = left
        rec.x[_CI["c_frac_uncommissioned"]] = left / n
        rec.hits = self.rules(rec.facts)
        _hit_features(rec)
        self._touch(tid)

    def _lot_made(self, gtin: str, lot: str, event: Event, who: str, qty: float) -> None:
        state = self.lots.setdefault((gtin, lot), _Lot())
        if not state.known:
            state.known = True
            state.expiry_t = event.expiry_t
            state.made_t = event.t
            state.commissioner = who
        if who != UNKNOWN:
            key = (who, gtin, lot)
            self.balance[key] = self.balance.get(key, 0.0) + qty
            self.hop[key] = 0
            state.holders.add(who)

    def _aggregate(self, event: Event) -> None:
        parent = next((epc for role, epc in event.epcs if role == "parent"), "")
        if not parent:
            return
        kids = self.children.setdefault(parent, set())
        for role, epc in event.epcs:
            if role != "child":
                continue
            if event.action == "ADD":
                kids.add(epc)
            else:
                kids.discard(epc)

    def _contents(self, event: Event) -> list[str]:
        out: list[str] = []
        stack = [epc for role, epc in event.epcs if role in ("epc", "parent", "child")]
        seen: set[str] = set()
        while stack:
            epc = stack.pop()
            if epc in seen:
                continue
            seen.add(epc)
            if "/21/" in epc:
                out.append(epc)
            stack.extend(self.children.get(epc, ()))
        return out

    def _serial_facts(
        self, event: Event, serials: list[str], receiving: bool, dest_xy: Any
    ) -> dict[tuple[str, str], dict]:
        """Serial facts per (GTIN, lot as last commissioned) of a shipping/receiving event; moves the serials."""
        out: dict[tuple[str, str], dict] = {}
        sender, receiver = event.source, event.dest
        here = dest_xy if receiving else (event.source_xy or event.at_xy)
        snapshots: list[tuple[str, tuple]] = []
        for sgtin in serials:
            s = self.serials.get(sgtin)
            if s is None:
                s = self.serials[sgtin] = _Serial()
            key = (self._gtin_of(sgtin), s.last_lot or "")
            f = out.get(key)
            if f is None:
                f = out[key] = {
                    "n": 0,
                    "uncommissioned": 0,
                    "inactive": 0,
                    "conflict": 0,
                    "strong_conflict": 0,
                    "lot_mismatch": 0,
                    "recommissioned": 0,
                    "returned_to_prior": 0,
                    "speed": 0.0,
                    "backwards_h": 0.0,
                    "unknown": [],
                    "tainted": 0,
                    "serials": [],
                    "intercepted": 0,
                    "intercepted_days": 0.0,
                    "intercepted_overdue": 0,
                    "intercepted_from": {},  # shipping event -> its packs taken here, overdue
                }
            f["n"] += 1
            f["serials"].append(s)
            if s.taint:
                f["tainted"] += 1
            if not s.commissioned:
                f["uncommissioned"] += 1
                f["unknown"].append(sgtin)
            if s.t is not None and event.t < s.t - 1.0 / 24:
                # A late upload describes the past: the serial has moved on since, so its current custody says
                # nothing about this event. Recorded, not judged, and it does not move the serial back.
                snapshots.append((sgtin, (s.custodian, s.prior, s.status, s.xy, s.t)))
                f["backwards_h"] = max(f["backwards_h"], (s.t - event.t) * 24.0)
                continue
            # A receiver that dispensed a pack before uploading its receipt is late, not a clone.
            if s.status in INACTIVE and not (receiving and s.inactive_by == receiver):
                f["inactive"] += 1
            consistent = True
            allowed = (sender, receiver) if receiving else (sender,)
            shipper = s.prior[-1] if s.prior else None
            if (
                s.status == "in_transit"
                and s.ship_event
                and s.custodian not in (*allowed, None)
                and shipper not in allowed
            ):
                # Its last shipment went to someone else and was never received, and now a third party moves it:
                # what theft looks like (shipped, never received, surfacing elsewhere). A missing receipt alone
                # does not (the consignee that ships on is the custodian), nor a shipper that ships its goods again.
                days = event.t - (s.t if s.t is not None else event.t)
                f["intercepted"] += 1
                f["intercepted_days"] = max(f["intercepted_days"], days)
                if days * 24.0 > self._overdue_h(shipper, s.custodian):
                    f["intercepted_overdue"] += 1
                    taken = f["intercepted_from"]
                    taken[s.ship_event] = taken.get(s.ship_event, 0) + 1
            if s.custodian is not None and sender != UNKNOWN and s.custodian not in allowed:
                consistent = False
                f["conflict"] += 1
                # Upstream custodians with a missing shipment are common (a gap in reporting); a pack last
                # held by a dispenser, or already sold, turning up elsewhere is what clones look like.
                held_by = self.parties.get(s.custodian)
                if (held_by is not None and held_by.kind in ("dispenser", "hospital")) or s.status in INACTIVE:
                    f["strong_conflict"] += 1
            if s.recommissioned:
                f["recommissioned"] += 1
            if s.lot and s.last_lot != s.lot:
                f["lot_mismatch"] += 1
            if not receiving and receiver in s.prior:
                f["returned_to_prior"] += 1
            if consistent and s.t is not None and s.xy is not None and here is not None:
                dt_h = (event.t - s.t) * 24.0
                km = haversine_km(s.xy, here)
                if dt_h > 0 and km > 50:
                    f["speed"] = max(f["speed"], km / max(dt_h, 0.05))
            snapshots.append((sgtin, (s.custodian, s.prior, s.status, s.xy, s.t)))
            # custody moves to the receiver at shipment already: a missing receipt must not look like a clone
            if s.custodian is not None and s.custodian != receiver:
                s.prior = (*s.prior[-3:], s.custodian)
            s.custodian = receiver if receiver != UNKNOWN else s.custodian
            s.status = "received" if receiving else "in_transit"
            s.ship_event = None if receiving or receiver == UNKNOWN else (event.event_id or None)
            s.xy = here or s.xy
            s.t = event.t
        if snapshots and event.event_id:
            self._remember(event, snapshots)
        return out

    # ------------------------------------------------------------------ transfers

    def _custody(self, event: Event) -> None:
        receiving = event.biz_step in ("receiving", "accepting")
        serials = self._contents(event)
        dest_xy = event.dest_xy or event.at_xy
        facts_by_gtin = self._serial_facts(event, serials, receiving, dest_xy)
        self._counts_now: dict[str, int] = {}
        for (g, _lot), f in facts_by_gtin.items():
            self._counts_now[g] = self._counts_now.get(g, 0) + f["n"]
        shipment = None
        if event.desadv:
            if receiving:
                shipment = self.shipments.get(event.desadv)
            elif event.biz_step == "shipping":
                counts = dict(self._counts_now)
                for _role, cls, q in event.quantities:
                    lot = self._lot_of_class(cls)
                    if lot is not None:
                        counts[lot[0]] = counts.get(lot[0], 0) + int(q or 0)
                self.shipments[event.desadv] = (event.t, event.source_xy or event.at_xy, counts)
        mine = self.transfers_of_event.setdefault(event.event_id, []) if event.event_id else []
        touched: list[tuple[TransferRecord, bool]] = []
        for stub in event.creates:
            self._create(event, stub, facts_by_gtin.get((stub.gtin, stub.lot)), receiving, shipment)
            mine.append(stub.id)
            touched.append((self.records[stub.id], receiving))
        for stub in event.receives:
            rec = self.records.get(stub.id)
            if rec is None:  # receipt of a transfer created before this replay started: create it now
                self._create(event, stub, facts_by_gtin.get((stub.gtin, stub.lot)), True, shipment)
                rec = self.records[stub.id]
            self._receive(event, stub, rec, facts_by_gtin.get((stub.gtin, stub.lot)), shipment)
            mine.append(stub.id)
            touched.append((rec, True))
        if len(touched) > 1:
            self._siblings(touched, facts_by_gtin)
        surfaced: dict[str, int] = {}
        for f in facts_by_gtin.values():
            for eid, k in f["intercepted_from"].items():
                surfaced[eid] = surfaced.get(eid, 0) + k
        for eid, n in surfaced.items():
            if eid != event.event_id:
                self._surfaced(eid, n, by=event.event_id)

    def _surfaced(self, event_id: str, n: int, *, by: str) -> None:
        """Packs of an earlier shipment, never received, were just moved by a third party: every transfer of that
        shipment is rescored with it (as a sweep would, from what the ledger holds now; no look-ahead)."""
        for tid in self.transfers_of_event.get(event_id, ()):
            rec = self.records.get(tid)
            if rec is None or rec.seq_receive is not None:
                continue
            self._set_surfaced(rec, rec.facts.get("surfaced_elsewhere", 0) + n)
            if by:
                self.surfaced_by.setdefault(by, []).append((tid, n))

    def _set_surfaced(self, rec: TransferRecord, n: float) -> None:
        if n > 0:
            rec.facts["surfaced_elsewhere"] = n
        else:
            rec.facts.pop("surfaced_elsewhere", None)
        rec.x[N_CREATE + _RI["r_surfaced_elsewhere"]] = 1.0 if n > 0 else 0.0
        self._rehit(rec)

    def _rehit(self, rec: TransferRecord) -> None:
        """Rules again on a transfer whose facts changed after its own events (a later entry told more about it)."""
        before = set(rec.hits)
        rec.hits = self.rules(rec.facts)
        _hit_features(rec)
        rec.x[N_CREATE + _RI["r_rule_hits"]] += len(set(rec.hits) - before)
        self._touch(rec.id)

    def _siblings(self, touched: list[tuple[TransferRecord, bool]], facts: dict[tuple[str, str], dict]) -> None:
        """Transfers of one event share its fate: fakes mixed with genuine packs make the genuine lot suspect too."""
        unknown = sum(f["uncommissioned"] + f["inactive"] + f["strong_conflict"] for f in facts.values())
        total = max(sum(f["n"] for f in facts.values()), 1)
        # packs that travelled in a suspicious transfer before (or were taken in transit), anywhere in the event
        tainted = min(sum(f["tainted"] + f["intercepted"] for f in facts.values()) / total, 1.0)
        hits = [len(rec.hits) for rec, _ in touched]
        for i, (rec, at_receipt) in enumerate(touched):
            others = sum(hits) - hits[i]
            if at_receipt:
                rec.x[N_CREATE + _RI["r_sibling_hits"]] = others
                rec.x[N_CREATE + _RI["r_sibling_unknown_frac"]] = unknown / total
            else:
                rec.x[_CI["c_sibling_hits"]] = others
                rec.x[_CI["c_sibling_unknown_frac"]] = unknown / total
                rec.x[_CI["c_sibling_tainted_frac"]] = tainted

    def _party(self, key: str) -> Party:
        p = self.parties.get(key)
        if p is None:
            p = self.parties[key] = Party(key=key, kind="other", licensed=False, known=False)
        return p

    def _hist(self, key: str, t: float) -> _PartyHistory:
        h = self.history.get(key)
        if h is None:
            h = self.history[key] = _PartyHistory(t)
        return h

    @staticmethod
    def _trim(q: _Window, t: float) -> float:
        return q.total(t)

    def _create(self, event: Event, stub: TransferStub, sf: dict | None, receiving: bool, shipment: Any = None) -> None:
        t = event.t
        a, b = stub.from_key or UNKNOWN, stub.to_key or UNKNOWN
        pa, pb = self._party(a), self._party(b)
        lot_key = (stub.gtin, stub.lot)
        lot = self.lots.get(lot_key)
        qty = max(stub.quantity, 0.0)
        x = np.zeros(N_FEATURES, dtype=np.float32)
        c = _CI
        facts: dict[str, float] = {"quantity": qty}
        # --- the transfer's own facts
        x[c["c_log_qty"]] = math.log1p(qty)
        if sf and sf["n"]:
            n = sf["n"]
            x[c["c_n_serials_log"]] = math.log1p(n)
            x[c["c_frac_uncommissioned"]] = sf["uncommissioned"] / n
            x[c["c_frac_inactive"]] = sf["inactive"] / n
            x[c["c_frac_custody_conflict"]] = sf["conflict"] / n
            mismatch = sf["lot_mismatch"]
            for sgtin in sf["unknown"]:
                self.pending_unknown.setdefault(sgtin, []).append(stub.id)
            x[c["c_frac_lot_mismatch"]] = mismatch / n
            x[c["c_frac_recommissioned"]] = sf["recommissioned"] / n
            x[c["c_frac_returned_to_prior"]] = sf["returned_to_prior"] / n
            x[c["c_frac_tainted"]] = sf["tainted"] / n
            x[c["c_frac_intercepted"]] = sf["intercepted"] / n
            x[c["c_intercepted_days_log"]] = math.log1p(sf["intercepted_days"])
            facts["tainted_serials"] = sf["tainted"]
            if sf["intercepted"]:
                facts["intercepted_serials"] = sf["intercepted"]
                facts["intercepted_overdue_serials"] = sf["intercepted_overdue"]
                facts["intercepted_days"] = round(sf["intercepted_days"], 1)
            x[c["c_serial_speed_log"]] = math.log1p(sf["speed"])
            x[c["c_serial_backwards_h"]] = min(sf["backwards_h"], 72.0)
            facts.update(
                serials=n,
                uncommissioned_serials=sf["uncommissioned"],
                inactive_serials=sf["inactive"],
                custody_conflicts=sf["conflict"],
                strong_custody_conflicts=sf["strong_conflict"],
                lot_mismatches=mismatch,
                recommissioned_serials=sf["recommissioned"],
                serial_speed_kmh=round(sf["speed"], 1),
                serial_backwards_h=round(sf["backwards_h"], 2),
            )
        known = lot is not None and lot.known
        x[c["c_lot_known"]] = 1.0 if known else (0.0 if stub.lot else 0.5)
        facts["lot_known"] = 1.0 if known else 0.0
        facts["lot_given"] = 1.0 if stub.lot else 0.0
        owner = self.lot_owner(stub.gtin)
        if known and lot is not None:
            by_brand = 1.0 if owner is None or lot.commissioner == owner else 0.0
            x[c["c_lot_by_brand"]] = by_brand
            facts["lot_by_brand"] = by_brand
            if lot.expiry_t is not None:
                left = lot.expiry_t - t
                x[c["c_days_to_expiry"]] = max(-365.0, min(left, 1500.0)) / 365.0
                x[c["c_lot_expired"]] = 1.0 if left < 0 else 0.0
                facts["days_to_expiry"] = round(left, 1)
            if lot.made_t is not None:
                x[c["c_lot_age_days"]] = min(max(t - lot.made_t, 0.0), 1500.0) / 365.0
            if lot.recalled_t is not None and lot.recalled_t <= t:
                x[c["c_lot_recalled"]] = 1.0
                facts["lot_recalled"] = 1.0
        else:
            x[c["c_lot_by_brand"]] = 0.5
        bal_key = (a, stub.gtin, stub.lot)
        held = self.balance.get(bal_key)
        if not receiving:
            deficit = max(0.0, qty - max(held or 0.0, 0.0)) / max(qty, 1.0)
            x[c["c_deficit_ratio"]] = deficit
            facts["sender_held"] = round(held or 0.0, 1)
            facts["deficit_ratio"] = round(deficit, 3)
        hop = self.hop.get(bal_key)
        x[c["c_sender_hop"]] = min(hop, 6) if hop is not None else -1.0
        x[c["c_sender_had_lot"]] = 1.0 if held is not None else 0.0
        facts["sender_had_lot"] = 1.0 if held is not None else 0.0
        x[c["c_from_unknown"]] = 0.0 if pa.known else 1.0
        x[c["c_to_unknown"]] = 0.0 if pb.known else 1.0
        x[c["c_from_unlicensed"]] = 0.0 if pa.licensed else 1.0
        x[c["c_to_unlicensed"]] = 0.0 if pb.licensed else 1.0
        facts.update(
            from_known=float(pa.known),
            to_known=float(pb.known),
            from_licensed=float(pa.licensed),
            to_licensed=float(pb.licensed),
        )
        km = haversine_km(stub.from_xy, stub.to_xy)
        x[c["c_log_distance"]] = math.log1p(km) if km >= 0 else -1.0
        facts["distance_km"] = round(km, 1)
        nonsellable = event.disposition in NONSELLABLE and not receiving
        x[c["c_is_return"]] = 1.0 if event.is_return else 0.0
        x[c["c_nonsellable"]] = 1.0 if nonsellable else 0.0
        to_brand = (lot is not None and lot.commissioner == b) or (owner is not None and owner == b)
        x[c["c_to_brand"]] = 1.0 if to_brand else 0.0
        facts.update(is_return=float(event.is_return), nonsellable=float(nonsellable), to_brand=float(to_brand))
        x[c["c_received_only"]] = 1.0 if receiving else 0.0
        ka, kb = kind_of(pa.kind), kind_of(pb.kind)
        x[c[f"c_from_{ka}"]] = 1.0
        x[c[f"c_to_{kb}"]] = 1.0
        x[c["c_direction"]] = KIND_RANK[kb] - KIND_RANK[ka]
        # --- history (strictly earlier entries)
        ha, hb = self.history.get(a), self.history.get(b)
        age_a = t - ha.first_t if ha else 0.0
        age_b = t - hb.first_t if hb else 0.0
        x[c["h_from_age_days"]] = min(age_a, 730.0) / 365.0
        x[c["h_to_age_days"]] = min(age_b, 730.0) / 365.0
        x[c["h_from_new"]] = 1.0 if age_a < NEW_PARTNER_DAYS else 0.0
        x[c["h_to_new"]] = 1.0 if age_b < NEW_PARTNER_DAYS else 0.0
        facts.update(from_age_days=round(age_a, 1), to_age_days=round(age_b, 1))
        if ha:
            x[c["h_from_out_log"]] = math.log1p(ha.n_out)
            x[c["h_from_in_log"]] = math.log1p(ha.n_in)
            x[c["h_from_customers_log"]] = math.log1p(len(ha.customers))
            x[c["h_from_hit_rate_out"]] = ha.hits_out / ha.n_out if ha.n_out else 0.0
            x[c["h_from_hit_rate_in"]] = ha.hits_in / ha.n_in if ha.n_in else 0.0
            x[c["h_from_in_new_frac"]] = ha.in_from_new / ha.n_in if ha.n_in else 0.0
            x[c["h_from_in_unlicensed_frac"]] = ha.in_from_unlicensed / ha.n_in if ha.n_in else 0.0
            x[c["h_from_returns_frac"]] = ha.returns_out / ha.n_out if ha.n_out else 0.0
            out14 = self._trim(ha.out_recent, t)
            span = max(t - ha.first_t, WINDOW_DAYS)
            x[c["h_from_out_qty_vs_own"]] = math.log1p(out14 + qty) - math.log1p(ha.out_qty_total * WINDOW_DAYS / span)
            if ha.n_out:
                x[c["h_qty_vs_sender"]] = math.log1p(qty) - ha.out_logqty_sum / ha.n_out
        if hb:
            x[c["h_to_in_log"]] = math.log1p(hb.n_in)
            x[c["h_to_out_log"]] = math.log1p(hb.n_out)
            x[c["h_to_suppliers_log"]] = math.log1p(len(hb.suppliers))
            x[c["h_to_suppliers_30d"]] = hb.suppliers_30d.count(t)
            x[c["h_to_hit_rate_in"]] = hb.hits_in / hb.n_in if hb.n_in else 0.0
            x[c["h_to_receipt_rate"]] = hb.in_received / hb.n_in if hb.n_in else 0.5
        else:
            x[c["h_to_receipt_rate"]] = 0.5
        in14 = self._trim(hb.in_recent, t) if hb else 0.0
        x[c["h_to_in_qty_14d_log"]] = math.log1p(in14 + qty)
        if hb:
            span = max(t - hb.first_t, WINDOW_DAYS)
            x[c["h_to_in_qty_vs_own"]] = math.log1p(in14 + qty) - math.log1p(hb.in_qty_total * WINDOW_DAYS / span)
        kstat = self.kind_in_qty.get(kb)
        if kstat and kstat[0] > 0:
            x[c["h_to_in_qty_vs_kind"]] = math.log1p(in14 + qty) - kstat[1] / kstat[0]
        # the same for this product: a pharmacy buying far more of one (controlled) product than it used to,
        # or than pharmacies do, is what pill mills look like
        pkey = (b, stub.gtin)
        pstat = self.product_in.get(pkey)
        p14 = pstat[0].total(t) if pstat else 0.0
        if pstat:
            span = max(t - pstat[2], WINDOW_DAYS)
            x[c["h_to_product_qty_vs_own"]] = math.log1p(p14 + qty) - math.log1p(pstat[1] * WINDOW_DAYS / span)
        kpstat = self.kind_product_in.get((kb, stub.gtin))
        if kpstat and kpstat[0] > 0:
            x[c["h_to_product_qty_vs_kind"]] = math.log1p(p14 + qty) - kpstat[1] / kpstat[0]
        facts["to_inbound_14d"] = round(in14 + qty, 1)
        pair = self.pairs.get((a, b))
        if pair:
            x[c["h_pair_log"]] = math.log1p(pair[0])
            x[c["h_pair_days_since"]] = min(t - pair[1], 365.0) / 365.0
            x[c["h_qty_vs_pair"]] = math.log1p(qty) - pair[2] / pair[0]
        else:
            x[c["h_pair_first"]] = 1.0
            x[c["h_pair_days_since"]] = 1.0
        facts["pair_transfers"] = float(pair[0]) if pair else 0.0
        rev = self.pairs.get((b, a))
        x[c["h_pair_reverse_log"]] = math.log1p(rev[0]) if rev else 0.0
        x[c["h_pair_product_log"]] = math.log1p(self.pair_product.get((a, b, stub.gtin), 0))
        if lot is not None:
            x[c["h_lot_holders_log"]] = math.log1p(len(lot.holders))
            x[c["h_lot_transfers_log"]] = math.log1p(lot.transfers)
        hits = self.rules(facts)
        x[c["h_rule_hits"]] = len(hits)
        if hits and sf:
            for serial in sf["serials"]:  # what a suspicious transfer carried stays suspect downstream
                serial.taint += len(hits)
        self._aggregate_neighbours(x, a, b, lot_key)
        rec = TransferRecord(
            id=stub.id,
            idx=len(self.order),
            from_key=a,
            to_key=b,
            lot_key=lot_key,
            t_create=t,
            seq_create=event.seq,
            x=x,
            ship_t=None if receiving else (stub.ship_t if stub.ship_t is not None else t),
            facts=facts,
            hits=hits,
            event_ids=[event.event_id],
        )
        _hit_features(rec)
        self.records[stub.id] = rec
        self.order.append(stub.id)
        self._touch(stub.id)
        # --- update history with this transfer (after its features were taken)
        ha = ha or self._hist(a, t)
        hb = hb or self._hist(b, t)
        ha.n_out += 1
        ha.out_qty_total += qty
        ha.out_logqty_sum += math.log1p(qty)
        ha.out_recent.add(t, qty)
        ha.customers.add(b)
        if event.is_return:
            ha.returns_out += 1
        hb.n_in += 1
        hb.in_qty_total += qty
        hb.in_recent.add(t, qty)
        hb.suppliers[a] = t
        hb.suppliers_30d.add(t, a)
        if age_a < NEW_PARTNER_DAYS:
            hb.in_from_new += 1
        if not pa.licensed:
            hb.in_from_unlicensed += 1
        if hits:
            ha.hits_out += 1
            hb.hits_in += 1
        if receiving:
            hb.in_received += 1
        kstat = self.kind_in_qty.setdefault(kb, [0.0, 0.0])
        kstat[0] += 1
        kstat[1] += math.log1p(in14 + qty)
        if pstat is None:
            pstat = self.product_in[pkey] = [_Window(WINDOW_DAYS), 0.0, t]
        pstat[0].add(t, qty)
        pstat[1] += qty
        kpstat = self.kind_product_in.setdefault((kb, stub.gtin), [0.0, 0.0])
        kpstat[0] += 1
        kpstat[1] += math.log1p(p14 + qty)
        if pair is None:
            pair = self.pairs[(a, b)] = [0.0, t, 0.0, 0.0, 0.0]
        pair[0] += 1
        pair[1] = t
        pair[2] += math.log1p(qty)
        self.pair_product[(a, b, stub.gtin)] = self.pair_product.get((a, b, stub.gtin), 0) + 1
        lot_state = self.lots.setdefault(lot_key, _Lot())
        lot_state.transfers += 1
        lot_state.holders.add(b)
        # quantities move at creation: a missing receipt must not leave the receiver short
        self.balance[bal_key] = (held or 0.0) - qty
        to_key = (b, stub.gtin, stub.lot)
        self.balance[to_key] = self.balance.get(to_key, 0.0) + qty
        if hop is not None:
            self.hop[to_key] = min(self.hop.get(to_key, 99), hop + 1)
        if receiving:
            self._receive(event, stub, rec, sf, shipment)

    def _aggregate_neighbours(self, x: np.ndarray, a: str, b: str, lot_key: tuple[str, str]) -> None:
        k = len(AGG_SOURCE)
        groups = (self.agg_in.get(a), self.agg_in.get(b), self.agg_lot.get(lot_key))
        for g, acc in enumerate(groups):
            base = _A0 + g * 2 * k
            if acc is not None and acc[0] > 0:
                x[base : base + k] = acc[1] / acc[0]
                x[base + k : base + 2 * k] = acc[2]
                x[_A0 + len(AGG_GROUPS) * 2 * k + g] = math.log1p(acc[0])
        v = x[_AGG_IDX].astype(np.float64)
        if b not in self.agg_in:
            self.agg_in[b] = [0, np.zeros_like(v), np.full_like(v, -np.inf)]
        if lot_key not in self.agg_lot:
            self.agg_lot[lot_key] = [0, np.zeros_like(v), np.full_like(v, -np.inf)]
        for acc in (self.agg_in[b], self.agg_lot[lot_key]):
            acc[0] += 1
            acc[1] += v
            np.maximum(acc[2], v, out=acc[2])

    def _receive(
        self, event: Event, stub: TransferStub, rec: TransferRecord, sf: dict | None, shipment: Any = None
    ) -> None:
        t = event.t
        x = rec.x
        r = {k: N_CREATE + i for k, i in _RI.items()}
        rec.seq_receive = event.seq
        rec.t_receive = t
        if event.event_id not in rec.event_ids:
            rec.event_ids.append(event.event_id)
        # Counts and times come from the shipment the receipt names (its despatch advice) when there is one:
        # a receipt matched to another shipment of the same lot must not look like inflation or time travel.
        ship_t = rec.ship_t
        if shipment is not None:
            ship_t = shipment[0]
            shipped = float(shipment[2].get(stub.gtin, 0))
            got = float(self._counts_now.get(stub.gtin, 0)) or (stub.received_quantity or 0.0)
            if shipped <= 0:
                shipped = max(stub.quantity, 0.0)
        elif event.desadv:
            # The receipt names a shipment that is not (yet) in the ledger: its pairing with this transfer is a
            # guess, so neither the transit time nor the count difference means anything.
            ship_t = None
            shipped = got = float(sf["n"]) if sf and sf["n"] else max(stub.quantity, 0.0)
        else:
            shipped = max(stub.quantity, 0.0)
            got = stub.received_quantity if stub.received_quantity is not None else shipped
        x[r["r_received"]] = 1.0
        x[r["r_recv_ratio"]] = min(got / shipped, 5.0) if shipped > 0 else 1.0
        over = max(0.0, got - shipped)
        x[r["r_recv_over"]] = math.log1p(over)
        rec.facts["received_quantity"] = got
        rec.facts["shipped_quantity"] = shipped
        rec.facts["received_over"] = over
        x[r["r_open_days"]] = 0.0
        rec.open_days = 0.0
        if ship_t is not None:
            transit_h = (t - ship_t) * 24.0
            x[r["r_before_shipped_h"]] = min(max(-transit_h, 0.0), 72.0)
            x[r["r_transit_log_h"]] = math.log1p(max(transit_h, 0.0))
            km = rec.facts.get("distance_km", -1.0)
            if shipment is not None and shipment[1] is not None:
                km = haversine_km(shipment[1], event.dest_xy or event.at_xy)
            rec.facts["transit_h"] = round(transit_h, 2)
            if km > 0 and transit_h > 0:
                speed = km / max(transit_h, 0.05)
                x[r["r_speed_log"]] = math.log1p(speed)
                rec.facts["speed_kmh"] = round(speed, 1)
            elif km > 50 and transit_h <= 0:
                x[r["r_speed_log"]] = math.log1p(km / 0.05)
                rec.facts["speed_kmh"] = round(km / 0.05, 1)
            norm = self._lane_norm(rec.from_key, rec.to_key, km)
            if norm is not None and transit_h > 0:
                x[r["r_transit_vs_lane"]] = math.log1p(transit_h) - norm
            if transit_h > 0:
                pair = self.pairs.get((rec.from_key, rec.to_key))
                if pair is not None:
                    pair[3] += 1
                    pair[4] += math.log1p(transit_h)
                band = self.band_transit.setdefault(self._band(km), [0.0, 0.0])
                band[0] += 1
                band[1] += math.log1p(transit_h)
            lane = (rec.from_key, rec.to_key)
            self.lane_received[lane] = max(self.lane_received.get(lane, ship_t), ship_t)
            hb = self.history.get(rec.to_key)
            if hb is not None and stub.receive_seq is not None and stub.ship_seq is not None:
                hb.in_received += 1
        if sf and sf["n"]:
            n = sf["n"]
            x[r["r_frac_uncommissioned"]] = sf["uncommissioned"] / n
            x[r["r_frac_inactive"]] = sf["inactive"] / n
            x[r["r_frac_custody_conflict"]] = sf["conflict"] / n
            x[r["r_serial_speed_log"]] = math.log1p(sf["speed"])
            x[r["r_frac_tainted"]] = sf["tainted"] / n
            x[r["r_frac_intercepted"]] = sf["intercepted"] / n
            if sf["intercepted"]:
                rec.facts["receipt_intercepted_serials"] = sf["intercepted"]
                rec.facts["receipt_intercepted_overdue_serials"] = sf["intercepted_overdue"]
                days = round(sf["intercepted_days"], 1)
                rec.facts["intercepted_days"] = max(rec.facts.get("intercepted_days", 0), days)
            rec.facts["receipt_custody_conflicts"] = sf["conflict"]
            rec.facts["receipt_strong_custody_conflicts"] = sf["strong_conflict"]
            # what is known now about the serials replaces what was known at shipment (late commissioning uploads)
            rec.facts["uncommissioned_serials"] = sf["uncommissioned"]
            rec.facts["receipt_inactive_serials"] = sf["inactive"]
            rec.facts["serial_speed_kmh"] = max(rec.facts.get("serial_speed_kmh", 0.0), round(sf["speed"], 1))
            rec.facts["serial_backwards_h"] = max(rec.facts.get("serial_backwards_h", 0.0), round(sf["backwards_h"], 2))
        before = set(rec.hits)
        rec.hits = self.rules(rec.facts)
        _hit_features(rec)
        if sf and len(rec.hits) > len(before):
            for serial in sf["serials"]:
                serial.taint += len(rec.hits) - len(before)
        x[r["r_rule_hits"]] = len(set(rec.hits) - before)
        self._touch(rec.id)

    def _set_open(self, rec: TransferRecord) -> None:
        r = {k: N_CREATE + i for k, i in _RI.items()}
        rec.x[r["r_open_days"]] = min(rec.open_days, 60.0) / 30.0
        km = rec.facts.get("distance_km", -1.0)
        norm = self._lane_norm(rec.from_key, rec.to_key, km)
        if norm is not None:
            rec.x[r["r_overdue_vs_lane"]] = math.log1p(rec.open_days * 24.0) - norm
        rec.facts["open_days"] = round(rec.open_days, 1)
        # a later shipment on the same lane has arrived and been recorded, this one has not: it is not just late
        later = self.lane_received.get((rec.from_key, rec.to_key))
        overtaken = later is not None and rec.ship_t is not None and later > rec.ship_t + 1.0 / 24
        rec.x[r["r_overtaken"]] = 1.0 if overtaken else 0.0

    @staticmethod
    def _band(km: float) -> int:
        return -1 if km < 0 else min(int(km // 250), 12)

    def _overdue_h(self, shipper: str | None, consignee: str | None) -> float:
        """Hours after which a shipment on this lane is overdue: twice its usual transit time, at least a day;
        three days on a lane with no received shipment yet."""
        pair = self.pairs.get((shipper or "", consignee or ""))
        if pair is not None and pair[3] >= 1:
            return max(24.0, 2.0 * math.expm1(pair[4] / pair[3]))
        return 72.0

    def _lane_norm(self, a: str, b: str, km: float) -> float | None:
        pair = self.pairs.get((a, b))
        if pair is not None and pair[3] >= 1:
            return pair[4] / pair[3]
        band = self.band_transit.get(self._band(km))
        if band is not None and band[0] >= 3:
            return band[1] / band[0]
        return None

    # ------------------------------------------------------------------ arrays for the models

    def _touch(self, tid: int) -> None:
        self.changed.add(tid)
        self._dirty.add(tid)

    def edge_arrays(self) -> dict[str, np.ndarray]:
        """Transfers as edges, in creation order: endpoints, lot, times, sequence numbers and features.

        Kept incrementally: new transfers are appended and changed ones rewritten, so a scoring run after a
        capture costs what changed, not the whole graph (views of growing buffers; copy before keeping)."""
        st = self._store
        n = len(self.order)
        if n > st["cap"] or not st["cap"]:  # (an empty ledger still has empty arrays)
            cap = max(1024, 2 * n)
            for name, dtype, width in _EDGE_COLUMNS:
                old = st.get(name)
                shape = (cap, width) if width else (cap,)
                new = np.zeros(shape, dtype=dtype) if name != "seq_receive" else np.full(shape, -1, dtype=dtype)
                if old is not None:
                    new[: st["n"]] = old[: st["n"]]
                st[name] = new
            st["cap"] = cap
        node_of, lot_of = st["node_of"], st["lot_of"]
        for i in range(st["n"], n):
            rec = self.records[self.order[i]]
            st["src"][i] = node_of.setdefault(rec.from_key, len(node_of))
            st["dst"][i] = node_of.setdefault(rec.to_key, len(node_of))
            st["lot"][i] = lot_of.setdefault(rec.lot_key, len(lot_of))
            st["t_create"][i] = rec.t_create
            st["seq_create"][i] = rec.seq_create
            st["transfer_id"][i] = rec.id
            self._dirty.add(rec.id)
        st["n"] = n
        for tid in self._dirty:
            changed = self.records.get(tid)
            if changed is None or changed.idx >= n:
                continue
            rec, i = changed, changed.idx
            st["x"][i] = rec.x
            st["seq_receive"][i] = rec.seq_receive if rec.seq_receive is not None else -1
            st["retracted"][i] = rec.retracted
            st["n_hits"][i] = len(rec.hits)
        self._dirty.clear()
        party_kind = np.zeros((len(node_of), len(KINDS) + 2), dtype=np.float32)
        for key, i in node_of.items():
            p = self._party(key)
            party_kind[i, KINDS.index(kind_of(p.kind))] = 1.0
            party_kind[i, len(KINDS)] = 0.0 if p.licensed else 1.0
            party_kind[i, len(KINDS) + 1] = 0.0 if p.known else 1.0
        out = {name: st[name][:n] for name, _dtype, _width in _EDGE_COLUMNS}
        out.update(party_static=party_kind, n_parties=np.array(len(node_of)), n_lots=np.array(len(lot_of)))
        return out


def _hit_features(rec: TransferRecord) -> None:
    rec.x[_K0:] = 0.0
    for code in rec.hits:
        i = _KI.get(code)
        if i is not None:
            rec.x[i] = 1.0


_EDGE_COLUMNS = [
    ("transfer_id", np.int64, 0),
    ("src", np.int64, 0),
    ("dst", np.int64, 0),
    ("lot", np.int64, 0),
    ("t_create", np.float64, 0),
    ("seq_create", np.int64, 0),
    ("seq_receive", np.int64, 0),
    ("retracted", bool, 0),
    ("n_hits", np.int16, 0),
    ("x", np.float32, N_FEATURES),
]
