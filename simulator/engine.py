"""The life of the goods, day by day: production, distribution, dispensing, returns, recalls, noise.

One ``Simulation`` walks the network through ``days`` days. Each day: scheduled arrivals and
scenario steps run, dispensers dispense and reorder, distribution centres pick and ship,
distribution centres reorder from manufacturers (or their 3PLs), manufacturers commission and
ship, and benign noise (returns, corrections, voids, expiries, recalls) happens. Events go to
the Sink as they happen. Everything random comes from generators seeded by the run's seed.
No Django here.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from simulator import ids
from simulator.events import DAY_MS, HOUR_MS, EventIds, aggregation_event, dumps, ilmd_text, object_event
from simulator.ids import _M1, _M2, _MASK40
from simulator.network import Loc, Network, Org, Product
from simulator.output import MAX_EVENTS_PER_DOCUMENT, Sink

# Final: compiled with mypyc, these are C constants instead of a module-dict lookup at each use
HOLDER_ROLES: Final = ("plant", "3pl", "dc", "chain_dc", "repack", "returns")
DISPENSER_ROLES: Final = ("store", "pharmacy", "hospital")
DC_OR_DISPENSER = ("dc", *DISPENSER_ROLES)
GROUND_KM_PER_DAY: Final = 700.0
RETURN_TAG = {"recalled": "recall_return", "expired": "expiry_return"}  # look-alike tag of each return to destruction
PALLET_CASES: Final = 40
# two upper-case hex digits per byte value (serial_text)
_HEX2: Final = [f"{i:02X}" for i in range(256)]


def serial_numbers(start: int, n: int, salt: int) -> np.ndarray:
    """The serial numbers of packages start..start+n-1 of a product (the 40-bit mix described in ids, of package
    number + salt: a bijection, so serials look random and never collide within a GTIN), as int64."""
    mask = np.uint64(_MASK40)
    x = (np.arange(start, start + n, dtype=np.uint64) + np.uint64(salt)) & mask
    x = (x * np.uint64(_M1)) & mask  # uint64 products wrap modulo 2**64: the low 40 bits stay exact
    x ^= x >> np.uint64(19)
    x = (x * np.uint64(_M2)) & mask
    return (x ^ (x >> np.uint64(21))).astype(np.int64)


def serial_text(serial: int, numeric: bool) -> str:
    """A package's serial as its SGTIN prints it: 13 digits ("%013d") or 10 upper-case hex digits ("%010X").

    String operations rather than a %-format: compiled with mypyc they take half the time (serials have 40 bits,
    so 10**13 + serial has 14 digits, the first a 1).
    """
    if numeric:
        return str(serial + 10_000_000_000_000)[1:]
    h = _HEX2
    return f"{h[serial >> 32]}{h[serial >> 24 & 255]}{h[serial >> 16 & 255]}{h[serial >> 8 & 255]}{h[serial & 255]}"


@dataclass
class SimConfig:
    seed: int
    days: int
    start: dt.date = dt.date(2025, 3, 3)
    target_events: int = 10_000
    noise: float = 1.0  # multiplier on benign look-alike rates (returns, corrections, voids, splits)
    missing: float = 1.0  # multiplier on missing-event rates
    late: float = 1.0  # multiplier on late-upload rates
    events_per_package: float = 2.0  # calibration: events generated per dispensed package
    warmup_days: int = 21  # the network fills up first; scenarios start after this


class Stock:
    """A holder's stock of one product: sealed cases and loose packages, oldest first (plain lists: stocks are
    short, and an empty list costs a tenth of an empty deque; a large network holds millions of them)."""

    __slots__ = ("cases", "loose")

    def __init__(self) -> None:
        self.cases: list[int] = []
        self.loose: list[int] = []


@dataclass(eq=False)
class Lot:
    idx: int
    prod: int
    number: str
    expiry_day: int
    expiry: str
    made_day: int
    recalled_day: int = -1
    short: bool = False
    size: int = 0
    phantom: bool = False  # a lot number nobody commissioned (counterfeit)


class Shipment:
    """One consignment from a seller to a buyer location, and what its events need.

    A plain class with a hand-written __init__ (formerly a dataclass with the same fields, defaults and order):
    compiled with mypyc, a dataclass's generated __init__ still runs interpreted.
    """

    __slots__ = (
        "arrive_day",
        "buyer",
        "cache",
        "cases",
        "desadv",
        "disposition",
        "force_recv",
        "inflate",
        "kind",
        "label_recv",
        "label_restock",
        "label_ship",
        "lot_level",
        "no_receive",
        "on_receive",
        "owner_from",
        "owner_to",
        "pallets",
        "pkgs",
        "po",
        "possessor_from",
        "possessor_to",
        "qty",
        "recalled",
        "recv_t",
        "recv_tag",
        "seller",
        "ship_event",
        "ship_seq",
        "submitter",
        "t_ship",
        "tag",
    )

    def __init__(
        self,
        seller: int,
        buyer: int,
        owner_from: int,
        owner_to: int,
        pkgs: list[int] | None = None,
        cases: list[int] | None = None,
        pallets: list[int] | None = None,
        qty: dict[int, int] | None = None,
        possessor_from: int = -1,
        possessor_to: int = -1,
        po: str = "",
        desadv: str = "",
        kind: str = "sale",
        disposition: str = "in_transit",
        arrive_day: int = 0,
        t_ship: int = 0,
        label_ship: Any = None,
        label_recv: Any = None,
        tag: Any = None,
        recv_tag: Any = None,
        lot_level: bool = False,
        ship_event: str = "",
        recv_t: int = -1,
        on_receive: Any = None,
        no_receive: bool = False,
        submitter: int = -1,
        inflate: int = 0,
        force_recv: bool = False,
        ship_seq: int = 0,
        label_restock: Any = None,
        cache: Any = None,
        recalled: Any = None,
    ) -> None:
        self.seller = seller  # loc
        self.buyer = buyer  # loc
        self.owner_from = owner_from  # org
        self.owner_to = owner_to  # org
        self.pkgs: list[int] = [] if pkgs is None else pkgs
        self.cases: list[int] = [] if cases is None else cases
        self.pallets: list[int] = [] if pallets is None else pallets
        self.qty: dict[int, int] = {} if qty is None else qty  # prod -> units ordered (on-order bookkeeping)
        self.possessor_from = possessor_from
        self.possessor_to = possessor_to
        self.po = po
        self.desadv = desadv
        self.kind = kind  # sale, transfer, return, return_rd
        self.disposition = disposition
        self.arrive_day = arrive_day
        self.t_ship = t_ship
        self.label_ship = label_ship
        self.label_recv = label_recv
        self.tag = tag
        self.recv_tag = recv_tag
        self.lot_level = lot_level
        self.ship_event = ship_event
        self.recv_t = recv_t  # forced receipt time (scenarios)
        self.on_receive = on_receive  # callback(sim, shipment, day)
        self.no_receive = no_receive
        self.submitter = submitter  # org that reports the shipping event (3PL for manufacturer-owned stock)
        self.inflate = inflate  # lot-level report claims this many more units than shipped (scenario)
        self.force_recv = force_recv  # the receipt is always reported (scenarios whose fraud is the report itself)
        self.ship_seq = ship_seq  # the sink's sequence number of the shipping event (receipts are written after it)
        self.label_restock = label_restock
        self.cache = cache  # rendered EPCs and parties, shared by the shipping and receiving events
        self.recalled = recalled  # lots recalled while it was on the road (set by Simulation.recall)

    def units(self) -> int:
        return len(self.pkgs) + len(self.cases) + len(self.pallets)


# A dispensing event's text up to its eventID, and from the eventID to the eventTime
_DISPENSING_HEAD: Final = '{"type":"ObjectEvent","eventID":"'
_DISPENSING_TIME: Final = '","eventTime":"'


class _Dispenser:
    """What dispensing at a location needs every day (a class with typed fields: compiled, direct field access)."""

    __slots__ = ("miss", "org", "org_idx", "sgtin_prefix", "skew", "stock", "tail")

    def __init__(self, stock: dict[int, Stock], org: Org, miss: float, sgtin_prefix: list[str], tail: str) -> None:
        self.stock = stock
        self.org = org
        self.org_idx = org.idx
        self.miss = miss
        self.skew = org.skew_ms
        self.sgtin_prefix = sgtin_prefix  # the SGTIN up to the serial, per product, in the partner's form
        self.tail = tail


class Simulation:
    def __init__(self, net: Network, cfg: SimConfig, sink: Sink, scenarios: Any = None) -> None:
        self.net = net
        self.cfg = cfg
        self.sink = sink
        self.clock = sink.clock
        self.rng = random.Random(f"flow/{cfg.seed}")
        self.noise_rng = random.Random(f"noise/{cfg.seed}")
        self.np = np.random.default_rng(np.random.SeedSequence([cfg.seed, 7]))
        self.ids = EventIds(cfg.seed)
        self.orgs: list[Org] = net.orgs
        self.locs: list[Loc] = net.locs
        self.products: list[Product] = net.products
        self.day = 0
        # product and lot of each package, as lists (not array("i")): compiled, a list item is read as a machine
        # integer without a call, an array item through the generic item protocol and a new int object;
        # the lists cost 4 more bytes per package (the int objects are shared)
        self.pkg_prod: list[int] = []
        self.pkg_lot: list[int] = []
        # the serial as its SGTIN prints it (serial_numbers, then serial_text), made once per package: a package's
        # SGTIN is written four or five times (commissioning, unpacking, shipping, receiving, dispensing)
        self.pkg_text: list[str] = []
        self.lots: list[Lot] = []
        self.lot_exp: list[int] = []  # expiry day per lot, for fast picking
        self.lots_of: dict[int, list[int]] = defaultdict(list)
        self.case_pkgs: dict[int, list[int]] = {}
        self.pallet_cases: dict[int, list[int]] = {}
        self.cont_epc: dict[int, tuple[str, str]] = {}
        self.n_cont = 0
        self.sscc_next: dict[int, int] = defaultdict(int)
        self.stock: list[dict[int, Stock]] = []
        self.on_order: list[dict[int, int]] = []
        self.agenda: dict[int, list[tuple]] = defaultdict(list)
        self.orders: dict[int, list[tuple[int, int, int, Any]]] = {}
        self.doc_counter: dict[int, int] = defaultdict(int)
        self.exp: dict[int, np.ndarray] = {}
        self.lead: dict[tuple[int, int], int] = {}
        self._rd_of: dict[int, int] = {}  # location -> its nearest reverse distributor
        self.scenarios = scenarios
        self.watch_pid: dict[tuple[int, int], Any] = {}
        self.watch_dispense_loc: dict[int, Any] = {}
        self.route_override: dict[int, tuple[list[int], Any]] = {}
        self.demand_boost: dict[int, tuple[float, int, int]] = {}
        self.dispensed_pool: dict[int, deque[tuple[int, int, int]]] = defaultdict(lambda: deque(maxlen=400))
        self.destroyed_pool: deque[tuple[int, int]] = deque(maxlen=2000)
        self.shortage: dict[int, tuple[int, int]] = {}
        self.lot_plan: dict[int, list[tuple[int, int]]] = defaultdict(list)  # prod -> [(from day, expiry day)]
        self.recall_plan: dict[int, list[int]] = defaultdict(list)  # day -> prods
        self.short_lots: list[int] = []
        self.counts: dict[str, int] = defaultdict(int)
        self.expired_hold: dict[int, list[tuple[int, bool]]] = {}
        self.receive_hooks: dict[int, Any] = {}  # buyer loc -> one-shot hook(sim, shipment)
        # one-shot hooks (sellers, hook(sim, shipment, day) -> handled) that may take over a shipment
        self.ship_hooks: list[tuple[set[int], Any]] = []
        self.watch_ship: dict[int, tuple[Any, int]] = {}  # package -> (incident, holder loc): fraudulent returns
        # A copy is a physical package of its own that carries another package's serial (clones, refilled packs):
        # copy -> original. Scenario state is keyed by package, so a copy and its original are never confused.
        self.copy_of: dict[int, int] = {}
        self._copies = self.copy_of.keys()  # a live view, for isdisjoint checks on hot paths
        self.recalled: set[int] = set()  # lots recalled so far
        self._party_cache: dict[tuple, str] = {}
        self.review: dict[int, set[int]] = {}  # dispenser -> products to review on its next ordering day
        self.picked: dict[int, set[int]] = {}  # holder -> products picked since its last review
        self._exp_nonzero: dict[int, list[int]] = {}
        # dispenser -> (products, the days they were first asked for): prescriptions waiting for stock
        self.backorders: dict[int, tuple[list[int], list[int]]] = {}
        self.last_seq = 0
        # per identifier form and product: the SGTIN up to its serial; per product: whether serials are numeric
        # (serial_text). The serial of every package is computed when it is made (pkg_text).
        self._sgtin_prefix: list[list[str]] = [[p.sgtin[dl] for p in self.products] for dl in (0, 1)]
        self._numeric: list[bool] = [p.numeric_serials for p in self.products]
        self._salt = [p.salt for p in self.products]
        self._replenishers: tuple[int, list[Loc]] = (-1, [])  # (number of locations, holders that reorder)
        self._dispenser_statics: dict[int, _Dispenser] = {}
        self._grow_locs()
        self._prepare_demand()
        self._doy = [(cfg.start + dt.timedelta(days=d)).timetuple().tm_yday for d in range(cfg.days + 1)]
        self._weekday = [(cfg.start + dt.timedelta(days=d)).weekday() for d in range(cfg.days + 1)]

    # ------------------------------------------------------------------ set-up

    def _grow_locs(self) -> None:
        while len(self.stock) < len(self.locs):
            self.stock.append({})
            self.on_order.append({})

    def _prepare_demand(self) -> None:
        P = len(self.products)
        pop = np.array([p.popularity for p in self.products])
        hosp = np.array([p.hospital_share for p in self.products])
        unit_dose = np.array([p.repack_of >= 0 for p in self.products])
        self.mix_r = pop * (1 - hosp) * ~unit_dose
        self.mix_h = pop * hosp
        self.mix_r /= self.mix_r.sum()
        self.mix_h /= self.mix_h.sum()
        self.controlled = np.array([p.schedule in ("CII", "CIII") for p in self.products])
        # typed lists (compiled, items of an untyped tolist() would go through generic arithmetic)
        self.ctrl: list[bool] = self.controlled.tolist()
        self.mix_r_list: list[float] = self.mix_r.tolist()
        self.mix_h_list: list[float] = self.mix_h.tolist()
        self.disp_locs = [loc for loc in self.locs if loc.role in DISPENSER_ROLES]
        self.dc_locs = [loc.idx for loc in self.locs if loc.role == "dc"]
        self._late_starters: tuple[int, set[int]] = (-1, set())
        total = sum(loc.rate for loc in self.disp_locs)
        want = self.cfg.target_events / (self.cfg.days * self.cfg.events_per_package)
        k = want / total
        for loc in self.disp_locs:
            loc.rate *= k
        self._propagate_expected()
        self.season_amp = np.array([p.season_amp for p in self.products])
        self.season_peak = np.array([p.season_peak for p in self.products])
        self._P = P

    def _propagate_expected(self) -> None:
        P = len(self.products)
        exp: dict[int, np.ndarray] = defaultdict(lambda: np.zeros(P))
        ctrl = self.controlled
        for loc in self.disp_locs:
            mix = self.mix_h if loc.role == "hospital" else self.mix_r
            r = loc.rate * mix
            share = 0.88 if loc.secondary >= 0 else 1.0
            unit = np.array([p.repack_of >= 0 for p in self.products])
            base = np.where(unit, 0.0, r)
            for p in np.nonzero(unit & (r > 0))[0]:
                exp[self.products[p].supply_loc][p] += r[p]
            if loc.controlled_supplier >= 0:
                exp[loc.primary] += np.where(ctrl, 0.0, base) * share
                exp[loc.controlled_supplier] += np.where(ctrl, base, 0.0) * share
            else:
                exp[loc.primary] += base * share
            if loc.secondary >= 0:
                exp[loc.secondary] += base * (1 - share)
        # second tier: chain DCs, secondaries and repackagers buy from national DCs
        for loc in self.locs:
            if loc.role == "chain_dc" or (loc.role == "dc" and self.orgs[loc.org].role == "secondary_wholesaler"):
                exp[loc.primary] += exp[loc.idx]
            elif loc.role == "repack":
                for q in self.products:
                    if q.supply_loc == loc.idx and q.repack_of >= 0:
                        exp[loc.idx][q.repack_of] += exp[loc.idx][q.idx] / q.repack_ratio
                org_loc = loc
                if org_loc.primary >= 0:
                    bulk = np.zeros(P)
                    for q in self.products:
                        if q.supply_loc == loc.idx and q.repack_of >= 0:
                            bulk[q.repack_of] += exp[loc.idx][q.repack_of]
                    exp[loc.primary] += bulk
        # third tier: national and regional DCs buy from the manufacturers' supply locations
        for loc in self.locs:
            if loc.role == "dc" and self.orgs[loc.org].role in ("national_wholesaler", "regional_wholesaler"):
                for p in np.nonzero(exp[loc.idx])[0]:
                    if self.products[p].repack_of < 0:
                        exp[self.products[p].supply_loc][p] += exp[loc.idx][p]
        for loc in self.locs:
            if loc.role == "3pl":
                for p in np.nonzero(exp[loc.idx])[0]:
                    exp[self.orgs[self.products[p].mfr].locations[0]][p] += exp[loc.idx][p]
        self.exp = dict(exp)

    def supplier_of(self, loc: Loc, p: Product) -> int:
        """Where a holder location reorders a product."""
        if loc.role in ("chain_dc", "repack") or (
            loc.role == "dc" and self.orgs[loc.org].role == "secondary_wholesaler"
        ):
            return loc.primary
        if loc.role == "3pl":
            return self.orgs[p.mfr].locations[0]
        return p.supply_loc

    # ------------------------------------------------------------------ identifiers and time

    def epc(self, pid: int, dl: bool) -> str:
        return self._sgtin_prefix[dl][self.pkg_prod[pid]] + self.pkg_text[pid]

    def epcs(self, pids: list[int], dl: bool) -> list[str]:
        """SGTINs of packages (the hottest loop: serials are computed when packages are made)."""
        pp, text, prefix = self.pkg_prod, self.pkg_text, self._sgtin_prefix[dl]
        return [prefix[pp[p]] + text[p] for p in pids]

    def new_packages(self, prod: int, lot: int, n: int, in_lot: bool = True) -> range:
        """n new packages; in_lot=False for packages the lot's maker never made (counterfeits)."""
        if lot >= 0 and in_lot:
            self.lots[lot].size += n
        start = len(self.pkg_prod)
        self.pkg_prod.extend([prod] * n)
        self.pkg_lot.extend([lot] * n)
        serials: list[int] = serial_numbers(start, n, self._salt[prod]).tolist()
        numeric = self._numeric[prod]
        self.pkg_text.extend([serial_text(s, numeric) for s in serials])
        return range(start, start + n)

    def copies(self, pids: list[int]) -> list[int]:
        """New physical packages carrying the serials (and product and lot) of existing ones."""
        out = []
        for pid in pids:
            c = len(self.pkg_prod)
            self.pkg_prod.append(self.pkg_prod[pid])
            self.pkg_lot.append(self.pkg_lot[pid])
            self.pkg_text.append(self.pkg_text[pid])
            self.copy_of[c] = self.copy_of.get(pid, pid)
            out.append(c)
        return out

    def unique_serials(self, pids: list[int]) -> tuple[list[int], list[int]]:
        """(packages with one package per serial, the packages left over): an epcList never repeats a serial."""
        seen: set[int] = set()
        keep: list[int] = []
        extra: list[int] = []
        for p in pids:
            k = self.copy_of.get(p, p)
            (extra if k in seen else keep).append(p)
            seen.add(k)
        return keep, extra

    def new_container(self, org: Org, children: list[int], pallet: bool) -> int:
        self.n_cont += 1
        cid = self.n_cont
        self.sscc_next[org.idx] += 1
        sscc = ids.Company(org.prefix).sscc(self.sscc_next[org.idx], extension=1 if pallet else 0)
        pl = len(org.prefix)
        self.cont_epc[cid] = (ids.sscc_epc(sscc, pl, False), ids.sscc_epc(sscc, pl, True))
        if pallet:
            self.pallet_cases[cid] = children
        else:
            self.case_pkgs[cid] = children
        return cid

    def t_at(self, loc: Loc, day: int, lo: float, hi: float) -> int:
        """A true (UTC) time on a local business day at a location."""
        off = self.clock.offset(loc.std_off, loc.dst, day)
        return day * DAY_MS + int((lo + (hi - lo) * self.rng.random()) * HOUR_MS) - off * 60_000

    def stamp(self, loc: Loc, t: int) -> tuple[str, str]:
        """eventTime and eventTimeZoneOffset as the location's partner writes them (with its clock skew)."""
        clock = self.clock  # Clock.offset and Clock.local, inlined: every event but dispensing comes through here
        off = loc.std_off
        if loc.dst and clock._dst[(t + off * 60_000) // DAY_MS + clock._date_base]:
            off += 60
        local = t + off * 60_000 + self.orgs[loc.org].skew_ms
        day, ms = local // DAY_MS, local % DAY_MS  # (not divmod: compiled, // and % are plain integer operations)
        offs = clock._offsets[off]
        # an f-string: one string built (compiled, date + time + ... makes three)
        return f"{clock._dates[day + clock._date_base]}{clock._hm[ms // 60_000]}{clock._sms[ms % 60_000]}{offs}", offs

    def number(self, org: int, prefix: str) -> str:
        n = self.doc_counter[org] + 1
        self.doc_counter[org] = n
        if n < 100_000_000:
            # zero-padded to 8 digits without a method call (compiled: f"{n:08d}" is a slow str.format call and
            # str.zfill a method lookup); the leading 1 of 10**8 + n cut off
            return f"{prefix}{str(n + 100_000_000)[1:]}"
        return prefix + str(n)  # (what zfill(8) gives for 9 digits or more)

    def late_days(self, org: Org) -> int:
        if org.late and self.noise_rng.random() < org.late * self.cfg.late:
            return self.noise_rng.choice((1, 1, 2, 3, 5, 8, 13))
        return 0

    def missing(self, org: Org, what: str) -> bool:
        p = org.miss.get(what, 0.0)
        return p > 0 and self.noise_rng.random() < p * self.cfg.missing

    # ------------------------------------------------------------------ event builders

    def emit_object(
        self,
        loc: Loc,
        t: int,
        epcs: list[str],
        action: str,
        step: str,
        disp: str,
        *,
        submitter: Org | None = None,
        label: Any = None,
        tag: Any = None,
        dep: int = -1,
        ilmd: Any = None,
        qty: list[dict] | None = None,
        extra: Any = None,
        biz_location: bool = True,
        late: bool = True,
        edge: Any = None,
        error_declaration: dict | None = None,
        eid: str | None = None,
        defer_days: int = 0,
        dep_seq: int = 0,
    ) -> tuple[str, str]:
        """Render and emit an ObjectEvent; returns (eventID, JSON text)."""
        org = submitter or self.orgs[loc.org]
        dl = org.digital_link
        ts, off = self.stamp(loc, t)
        eid = eid or self.ids.next()
        if isinstance(extra, dict):
            extra = "," + dumps(extra)[1:-1]
        if isinstance(ilmd, dict):
            ilmd = ilmd_text(ilmd["cbvmda:lotNumber"], ilmd["cbvmda:itemExpirationDate"])
        if error_declaration is not None:
            extra = (extra or "") + ',"errorDeclaration":' + dumps(error_declaration)
        sg = loc.sgln[dl]
        text = object_event(
            eid,
            ts,
            off,
            epcs,
            action,
            step,
            disp,
            sg,
            sg if biz_location else "",
            extra or "",
            ilmd or "",
            dumps(qty) if qty else "",
        )
        late_days = self.late_days(org) if late and org.late else 0
        if (
            dep < 0
            and label is None
            and tag is None
            and edge is None
            and not late_days
            and not defer_days
            and error_declaration is None
        ):
            self.last_seq = self.sink.emit_plain(org.idx, t, text, ts, step)
        else:
            self.last_seq = self.sink.emit(
                org.idx,
                t,
                text,
                eid,
                ts,
                step,
                dep=dep,
                dep_seq=dep_seq,
                label=label,
                tag=tag,
                edge=edge,
                late_days=late_days,
                error=error_declaration is not None,
                defer_days=defer_days,
            )
        return eid, text

    def emit_aggregation(
        self,
        loc: Loc,
        t: int,
        parent: str,
        children: list[str],
        action: str,
        step: str,
        disp: str,
        submitter: Org | None = None,
        label: Any = None,
        tag: Any = None,
        late_days: int | None = None,
    ) -> str:
        org = submitter or self.orgs[loc.org]
        ts, off = self.stamp(loc, t)
        eid = self.ids.next()
        text = aggregation_event(eid, ts, off, parent, children, action, step, disp, loc.sgln[org.digital_link])
        if late_days is None:
            late_days = self.late_days(org) if org.late else 0
        if label is None and tag is None and not late_days:
            self.sink.emit_plain(org.idx, t, text, ts, step)
        else:
            self.sink.emit(org.idx, t, text, eid, ts, step, label=label, tag=tag, late_days=late_days)
        return eid

    def shipment_epcs(self, sh: Shipment, dl: bool) -> list[str]:
        cont = self.cont_epc
        out = [cont[c][dl] for c in sh.pallets]
        out += [cont[c][dl] for c in sh.cases]
        out += self.epcs(sh.pkgs, dl)
        if self.copy_of and sh.kind == "return_rd":  # packs with one serial, going to destruction together
            return list(dict.fromkeys(out))
        return out

    def shipment_quantities(self, sh: Shipment, dl: bool) -> list[dict]:
        per_lot: dict[int, int] = {}
        for p in sh.pkgs:
            lot_idx = self.pkg_lot[p]
            per_lot[lot_idx] = per_lot.get(lot_idx, 0) + 1
        out: list[dict[str, Any]] = []
        for lot_idx, n in per_lot.items():
            lot = self.lots[lot_idx]
            prod = self.products[lot.prod]
            out.append({"epcClass": ids.lgtin(prod.gtin, prod.prefix_len, lot.number, dl), "quantity": n})
        if sh.inflate and out:
            out[0]["quantity"] += sh.inflate
        return out

    def parties(self, sh: Shipment, dl: bool) -> str:
        """bizTransactionList, sourceList and destinationList as a JSON fragment (',"bizTransactionList":...')."""
        key = (sh.seller, sh.buyer, sh.owner_from, sh.owner_to, sh.possessor_from, sh.possessor_to, dl)
        frag = self._party_cache.get(key)
        if frag is None:
            o, L = self.orgs, self.locs
            src = '[{"type":"owning_party","source":"' + o[sh.owner_from].pgln[dl] + '"}'
            if sh.possessor_from >= 0:
                src += ',{"type":"possessing_party","source":"' + o[sh.possessor_from].pgln[dl] + '"}'
            src += ',{"type":"location","source":"' + L[sh.seller].sgln[dl] + '"}]'
            dst = '[{"type":"owning_party","destination":"' + o[sh.owner_to].pgln[dl] + '"}'
            if sh.possessor_to >= 0:
                dst += ',{"type":"possessing_party","destination":"' + o[sh.possessor_to].pgln[dl] + '"}'
            dst += ',{"type":"location","destination":"' + L[sh.buyer].sgln[dl] + '"}]'
            frag = self._party_cache[key] = ',"sourceList":' + src + ',"destinationList":' + dst
        L = self.locs
        btype = "rma" if sh.kind in ("return", "return_rd") else "po"
        # one join (a chain of + copies the growing text at every step)
        return "".join(
            (
                ',"bizTransactionList":[{"type":"',
                btype,
                '","bizTransaction":"',
                ids.biz_transaction(L[sh.buyer].gln, sh.po),
                '"},{"type":"desadv","bizTransaction":"',
                ids.biz_transaction(L[sh.seller].gln, sh.desadv),
                '"}]',
                frag,
            )
        )

    def render(self, sh: Shipment, dl: bool) -> tuple[list[str], str]:
        c = sh.cache
        if c is not None and c[0] == dl and c[1] is sh.pkgs and c[2] == len(sh.pkgs) and c[5] == sh.po:
            return c[3], c[4]
        epcs = self.shipment_epcs(sh, dl)
        extra = self.parties(sh, dl)
        sh.cache = (dl, sh.pkgs, len(sh.pkgs), epcs, extra, sh.po)
        return epcs, extra

    def transfer_key(self, sh: Shipment) -> str:
        return ids.biz_transaction(self.locs[sh.seller].gln, sh.desadv)

    # ------------------------------------------------------------------ shipping and receiving

    def number_shipment(self, sh: Shipment) -> None:
        """The shipment's despatch-advice number and its buyer's order number (a return: an RMA), once each."""
        if not sh.desadv:
            sh.desadv = self.number(self.locs[sh.seller].org, "ASN")
        if not sh.po:
            sh.po = self.number(self.locs[sh.buyer].org, "RMA" if sh.kind in ("return", "return_rd") else "PO")

    def ship(self, sh: Shipment, day: int, t: int | None = None, *, force: bool = False) -> str | None:
        """Report a shipment (unless the shipper fails to send it) and schedule its arrival. Returns the eventID."""
        seller = self.locs[sh.seller]
        buyer = self.locs[sh.buyer]
        self.number_shipment(sh)
        sh.t_ship = t if t is not None else self.t_at(seller, day, 17.0, 22.5)
        if not sh.arrive_day:
            km = self.net.distance(sh.seller, sh.buyer)
            sh.arrive_day = day + 1 + int(km // GROUND_KM_PER_DAY)
        submitter = self.orgs[sh.submitter] if sh.submitter >= 0 else self.orgs[seller.org]
        eid = None
        to_dispenser = buyer.role in DISPENSER_ROLES
        if self.copy_of and sh.kind != "return_rd" and not self._copies.isdisjoint(sh.pkgs):
            self._one_package_per_serial(sh)
        if (
            sh.label_ship is None
            and self.scenarios is not None
            and (
                (self.watch_ship and not self.watch_ship.keys().isdisjoint(sh.pkgs))
                or (self.watch_pid and seller.role in DISPENSER_ROLES)  # a dispenser sends an incident's goods back
            )
        ):
            self.scenarios.check_resale(self, sh)
        if self.recalled and sh.label_ship is not None:  # a scenario's goods may come from a recalled lot
            sh.recalled = self._recalled_lots_in(sh) or None
        # A scenario's shipments are always reported; everything else follows the partner's habits.
        skip = (
            not force
            and sh.label_ship is None
            and to_dispenser
            and sh.kind == "sale"
            and self.missing(submitter, "shipping_to_dispenser")
        )
        if not skip:
            dl = submitter.digital_link
            lot_level = sh.lot_level or (submitter.lot_level and to_dispenser and not sh.cases and not sh.pallets)
            tag = (sh.tag, self.transfer_key(sh)) if sh.tag else None
            self.sink.add_edge(sh.seller, sh.buyer, self.package_count(sh))
            if lot_level:
                eid, _ = self.emit_object(
                    seller,
                    sh.t_ship,
                    [],
                    "OBSERVE",
                    "shipping",
                    sh.disposition,
                    submitter=submitter,
                    qty=self.shipment_quantities(sh, dl),
                    extra=self.parties(sh, dl),
                    label=sh.label_ship,
                    tag=tag,
                    biz_location=False,
                )
                sh.ship_seq = self.last_seq
            else:
                epcs, extra = self.render(sh, dl)
                eid, _ = self.emit_object(
                    seller,
                    sh.t_ship,
                    epcs,
                    "OBSERVE",
                    "shipping",
                    sh.disposition,
                    submitter=submitter,
                    extra=extra,
                    label=sh.label_ship,
                    tag=tag,
                    biz_location=False,
                )
            sh.ship_event = eid
            sh.ship_seq = self.last_seq
        if not sh.no_receive:
            self.agenda[sh.arrive_day].append(("receive", sh))
        return eid

    def _one_package_per_serial(self, sh: Shipment) -> None:
        """A package and its copy never travel in one event (an epcList repeats no serial): the copy waits."""
        keep, extra = self.unique_serials(sh.pkgs)
        if not extra:
            return
        sh.pkgs = keep
        stock = self.stock[sh.seller]
        for p in reversed(extra):
            self._stock(stock, p).loose.insert(0, p)

    def package_count(self, sh: Shipment) -> int:
        if not sh.cases and not sh.pallets:
            return len(sh.pkgs)
        n = len(sh.pkgs) + sum(len(self.case_pkgs.get(c, ())) for c in sh.cases)
        n += sum(len(self.case_pkgs.get(c, ())) for pl in sh.pallets for c in self.pallet_cases.get(pl, ()))
        return n

    def receive(self, sh: Shipment, day: int) -> None:
        buyer = self.locs[sh.buyer]
        org = self.orgs[buyer.org]
        if sh.recv_t >= 0:
            t = sh.recv_t
        else:
            t = self.t_at(buyer, day, 7.0, 11.5)
            if t <= sh.t_ship:
                t = sh.t_ship + int(self.rng.uniform(3, 9) * HOUR_MS)
        submitter = self.orgs[sh.possessor_to] if sh.possessor_to >= 0 else org
        to_dispenser = buyer.role in DISPENSER_ROLES
        if sh.kind == "return":
            disp = "returned"
        elif sh.kind == "return_rd":
            disp = sh.disposition if sh.disposition != "in_transit" else "non_sellable_other"
        else:
            disp = "sellable_accessible" if to_dispenser else "in_progress"
        recv_tag = sh.recv_tag
        if recv_tag is None and org.first_day > 0 and day - org.first_day < 21:
            recv_tag = "new_partner"
        hook = self.receive_hooks.pop(buyer.idx, None) if self.receive_hooks else None
        if hook is not None:
            hook(self, sh)
        # labelled receipts obey the receiver's reporting habits too, or their presence would give them away
        if sh.force_recv or not self.missing(submitter, "receiving"):
            epcs, extra = self.render(sh, submitter.digital_link)
            self.emit_object(
                buyer,
                t,
                epcs,
                "OBSERVE",
                "receiving",
                disp,
                submitter=submitter,
                extra=extra,
                label=sh.label_recv,
                tag=(recv_tag, self.transfer_key(sh)) if recv_tag else None,
                dep=self.locs[sh.seller].org if sh.submitter < 0 else sh.submitter,
                dep_seq=sh.ship_seq,
            )
        oo = self.on_order[buyer.idx]
        for prod, q in sh.qty.items():
            if prod in oo:
                oo[prod] = max(0, oo[prod] - q)
        # Goods of a lot recalled while they were on the road go back like the rest of the lot; not in the
        # recalled-stock scenario, whose broker keeps them and whose pharmacy dispenses them (labelled).
        recalled = (
            sh.recalled
            if sh.recalled
            and sh.on_receive is None
            and sh.kind != "return_rd"
            and (sh.label_recv is None or sh.label_recv[0] != "expired_recalled_reentry")
            else None
        )
        if sh.on_receive is not None:
            sh.on_receive(self, sh, day, t)
            return
        if sh.kind == "return_rd":
            self.agenda[day + self.rng.randint(3, 12)].append(("destroy", buyer.idx, sh))
            return
        stock = self.stock[buyer.idx]
        for pal in sh.pallets:
            cases = self.pallet_cases.pop(pal)
            dl = submitter.digital_link
            if not self.missing(submitter, "unpacking"):
                self.emit_aggregation(
                    buyer,
                    t + 1_200_000,
                    self.cont_epc[pal][dl],
                    [self.cont_epc[c][dl] for c in cases],
                    "DELETE",
                    "unpacking",
                    "in_progress",
                    submitter=submitter,
                )
            for c in cases:
                self._stock_case(stock, c)
        for c in sh.cases:
            if to_dispenser:
                self.unpack_case(buyer, c, t + 900_000, submitter)
                for p in self.case_pkgs.pop(c):
                    self._stock(stock, p).loose.append(p)
            else:
                self._stock_case(stock, c)
        if sh.kind == "return":
            # saleable return: verified (VRS) and put away again after a day or two
            self.agenda[day + self.rng.randint(1, 3)].append(("restock", buyer.idx, list(sh.pkgs), sh))
            return
        pp = self.pkg_prod
        for p in sh.pkgs:
            prod = pp[p]
            st = stock.get(prod)
            if st is None:
                st = stock[prod] = Stock()
            st.loose.append(p)
        if recalled:
            self._send_back_recalled(buyer, recalled, day + 1)

    def _recalled_lots_in(self, sh: Shipment) -> set[int]:
        lot_of, case_pkgs, recalled = self.pkg_lot, self.case_pkgs, self.recalled
        found = {lot_of[p] for p in sh.pkgs if lot_of[p] in recalled}
        cases = [*sh.cases, *(c for pal in sh.pallets for c in self.pallet_cases.get(pal, ()))]
        found.update(lot_of[case_pkgs[c][0]] for c in cases if lot_of[case_pkgs[c][0]] in recalled)
        return found

    def _mark_in_transit(self, lot_idx: int) -> None:
        """Shipments on the road with goods of a newly recalled lot: their receivers send those goods back."""
        lot_of, case_pkgs, pallet_cases = self.pkg_lot, self.case_pkgs, self.pallet_cases
        for items in self.agenda.values():
            for item in items:
                if item[0] != "receive":
                    continue
                sh: Shipment = item[1]  # (typed: compiled, its fields are read directly)
                cases = [*sh.cases, *(c for pal in sh.pallets for c in pallet_cases.get(pal, ()))]
                if any(lot_of[p] == lot_idx for p in sh.pkgs) or any(
                    lot_of[case_pkgs[c][0]] == lot_idx for c in cases if c in case_pkgs
                ):
                    sh.recalled = (sh.recalled or set()) | {lot_idx}

    def _send_back_recalled(self, loc: Loc, lots: set[int], day: int) -> None:
        """A holder that receives goods of a recalled lot after the recall returns them, as the holders did."""
        stock = self.stock[loc.idx]
        lot_of = self.pkg_lot
        for lot_idx in sorted(lots):
            s = stock.get(self.lots[lot_idx].prod)
            if s is None:
                continue
            pkgs = [p for p in s.loose if lot_of[p] == lot_idx]
            cases = [c for c in s.cases if lot_of[self.case_pkgs[c][0]] == lot_idx]
            if pkgs:
                s.loose = [p for p in s.loose if lot_of[p] != lot_idx]
            if cases:
                s.cases = [c for c in s.cases if lot_of[self.case_pkgs[c][0]] != lot_idx]
            for c in cases:
                self.unpack_case(loc, c, self.t_at(loc, day, 8.0, 9.0))
                pkgs.extend(self.case_pkgs.pop(c))
            self.return_to_rd(loc, pkgs, day, "recalled", tag="recall_return")

    def _stock(self, stock: dict[int, Stock], pid: int) -> Stock:
        prod = self.pkg_prod[pid]
        s = stock.get(prod)
        if s is None:
            s = stock[prod] = Stock()
        return s

    def _stock_case(self, stock: dict[int, Stock], cid: int) -> None:
        pk = self.case_pkgs[cid]
        prod = self.pkg_prod[pk[0]]
        s = stock.get(prod)
        if s is None:
            s = stock[prod] = Stock()
        s.cases.append(cid)

    def unpack_case(self, loc: Loc, cid: int, t: int, submitter: Org | None = None) -> None:
        org = submitter or self.orgs[loc.org]
        if self.missing(org, "unpacking"):
            return
        dl = org.digital_link
        pkgs = self.case_pkgs[cid]
        prod = self.pkg_prod[pkgs[0]]  # a case holds one product
        prefix, text = self._sgtin_prefix[dl][prod], self.pkg_text
        self.emit_aggregation(
            loc,
            t,
            self.cont_epc[cid][dl],
            [prefix + text[p] for p in pkgs],
            "DELETE",
            "unpacking",
            "in_progress",
            submitter=org,
        )

    # ------------------------------------------------------------------ the daily loop

    def plan_noise(self) -> None:
        """Benign disruptions: product shortages (with unusual routing) and recalls."""
        rng = random.Random(f"disruptions/{self.cfg.seed}")
        days = self.cfg.days
        candidates = [p.idx for p in self.products if p.repack_of < 0]
        for prod in rng.sample(candidates, max(1, len(candidates) // 14)):
            a = rng.randrange(days // 6, max(days // 6 + 1, days * 2 // 3))
            self.shortage[prod] = (a, a + rng.randint(14, 40))
        for _ in range(max(1, round(days / 60 * self.cfg.noise))):
            self.recall_plan[rng.randrange(days // 4, days - 5)].append(rng.choice(candidates))
        self.open_newcomers(rng, max(4, round(8 * self.cfg.target_events / 100_000 * self.cfg.noise)))

    def open_newcomers(self, rng: random.Random, n: int) -> None:
        """Legitimate secondary wholesalers that open during the run and win a few nearby customers.

        Scenarios bring in new intermediaries too; without honest newcomers, "new partner" would be a label.
        """
        net = self.net
        geo = net.geo
        sites = [f for f in geo.facilities if f.activity == "distributor"]
        region = [f for f in sites if f.state in net.region_states] or sites
        serving = [d for o in net.nationals for d in net.dcs_of(o) if d in self.exp and self.exp[d].sum() > 0]
        independents = [loc for loc in self.disp_locs if loc.role == "pharmacy" and loc.first_day == 0]
        if not serving or not independents:
            return
        warm, days = self.cfg.warmup_days, self.cfg.days
        lats = np.array([c.lat for c in independents])
        lons = np.array([c.lon for c in independents])
        for _ in range(n):
            site = rng.choice(region if rng.random() < 0.8 else sites)
            first = rng.randrange(min(warm, days - 2), max(warm + 1, days * 85 // 100))
            org = net.add_org(
                "secondary_wholesaler",
                net.names.business("secondary_wholesaler"),
                net.new_prefix(9, rng.choice(["10", "11"])),
                site.state,
                licence_status="expired" if rng.random() < 0.1 else "active",
                first_day=first,
            )
            org.window_days = 7
            org.lot_level = rng.random() < 0.4
            org.miss = {"shipping_to_dispenser": rng.uniform(0.03, 0.35)}
            lat, lon = net.facility_point(site.county_fips)
            loc = net.add_loc(org, "dc", f"{org.name} warehouse", lat, lon, site.county_fips, first_day=first)
            self._grow_locs()
            loc.primary = net.nearest(loc.idx, serving)
            # its customers: the closest independents (vectorised: large networks have thousands)
            km = np.hypot(lats - loc.lat, (lons - loc.lon) * math.cos(math.radians(loc.lat)))
            n_customers = rng.randint(2, 5)  # (not inside the slice: compiled, a slice bound may be evaluated twice)
            customers = [independents[i] for i in np.argsort(km, kind="stable")[:n_customers].tolist()]
            exp = np.zeros(self._P)
            for c in customers:
                c.secondary = loc.idx
                exp += c.rate * self.mix_r * 0.12
            exp[[p.idx for p in self.products if p.repack_of >= 0]] = 0.0
            self.exp[loc.idx] = exp
            self.exp[loc.primary] = self.exp[loc.primary] + exp

    def run(self, progress: Any = None) -> None:
        days = self.cfg.days
        self.plan_noise()
        if self.scenarios is not None:
            self.scenarios.plan(self)
        for day in range(days):
            self.day = day
            self.sink.day = day
            # recalls (planned or a scenario's) are announced first thing: nothing of the lot leaves a holder
            # after that, and what arrives later goes back
            self.manufacture_day(day)
            if self.scenarios is not None:
                self.scenarios.on_day(self, day)
            for item in self.agenda.pop(day, []):
                self._do(item, day)
            self.dispense_day(day)
            self.fulfil_day(day)
            self.replenish_day(day)
            self.noise_day(day)
            self.sink.end_of_day(day)
            if progress is not None:
                progress(day + 1, days, self.sink.events_written)
        # arrivals after the horizon are not simulated: the horizon ends with goods in transit
        self.sink.close()

    def _do(self, item: tuple, day: int) -> None:
        kind = item[0]
        if kind == "receive":
            self.receive(item[1], day)
        elif kind == "restock":
            self._restock(item[1], item[2], item[3], day)
        elif kind == "destroy":
            self._destroy(item[1], item[2], day)
        elif kind == "call":
            item[1](self, day)
        elif kind == "cancel":
            loc, qty = item[1], item[2]
            oo = self.on_order[loc]
            for prod, q in qty.items():
                if prod in oo:
                    oo[prod] = max(0, oo[prod] - q)

    # ---- dispensing and dispenser orders

    def season(self, day: int) -> np.ndarray:
        doy = self._doy[min(day, len(self._doy) - 1)]
        return np.maximum(0.05, 1 + self.season_amp * np.cos(2 * math.pi * (doy - self.season_peak) / 365.0))

    def dispense_day(self, day: int) -> None:
        wd = self._weekday[day]
        wfac = (1.06, 1.06, 1.06, 1.06, 1.1, 0.7, 0.35)[wd]
        locs = [loc for loc in self.disp_locs if loc.first_day <= day]
        ramp = [min(1.0, 0.35 + (day - loc.first_day) / 30.0) if loc.first_day else 1.0 for loc in locs]
        lam = np.array([loc.rate * wfac * r for loc, r in zip(locs, ramp, strict=True)])
        counts = self.np.poisson(lam)
        season = self.season(day)
        mix_r = self.mix_r * season
        mix_r /= mix_r.sum()
        mix_h = self.mix_h * season
        mix_h /= mix_h.sum()
        is_h = np.array([loc.role == "hospital" for loc in locs], dtype=bool)
        n_r = int(counts[~is_h].sum())
        n_h = int(counts[is_h].sum())
        prods_r: list[int] = self.np.choice(self._P, size=n_r, p=mix_r).tolist() if n_r else []
        prods_h: list[int] = self.np.choice(self._P, size=n_h, p=mix_h).tolist() if n_h else []
        ir = ih = 0
        rng_random = self.rng.random  # a bound method: compiled, a cheaper call than a method lookup each time
        clock = self.clock
        sink = self.sink
        ids = self.ids
        ready = ids._ready  # eventIDs drawn ahead (EventIds.next, inlined)
        watch_pid = self.watch_pid
        watch_loc = self.watch_dispense_loc
        pool = self.dispensed_pool
        backorders = self.backorders
        sink_buf = sink.buf
        step_counts = sink.by_org_step
        serial_texts = self.pkg_text
        noise_random = self.noise_rng.random
        sms = clock._sms
        boosts = self.demand_boost
        date_hm = clock.day_minutes(day)  # "YYYY-MM-DDTHH:MM:" per minute of the local day
        offsets: dict[tuple[int, bool], int] = {}
        statics = self._dispenser_statics
        n: int  # (typed for mypyc: tolist() gives Any)
        hosp: bool
        for loc, n, hosp in zip(locs, counts.tolist(), is_h.tolist(), strict=True):
            if hosp:
                prods = prods_h[ih : ih + n]
                ih += n
            else:
                prods = prods_r[ir : ir + n]
                ir += n
            loc_idx = loc.idx
            if boosts:
                boost = boosts.get(loc_idx)
                if boost is not None and boost[1] <= day < boost[2]:
                    extra = self.np.poisson(loc.rate * boost[0] * 0.5)
                    ctrl = [i for i in range(self._P) if self.controlled[i]]
                    prods = prods + [ctrl[int(x)] for x in self.np.integers(0, len(ctrl), size=extra)]
            waiting = backorders.pop(loc_idx, None) if backorders else None
            since: list[int] | None
            if waiting:
                # prescriptions the pharmacy could not fill earlier: filled once the stock arrives
                since = waiting[1] + [day] * len(prods)
                prods = waiting[0] + prods
            elif not prods:
                continue
            else:
                since = None
            st = statics.get(loc_idx)
            if st is None:
                st = statics[loc_idx] = self._dispenser_static(loc)
            stock, org, org_idx, miss, skew = st.stock, st.org, st.org_idx, st.miss, st.skew
            prefix, tail = st.sgtin_prefix, st.tail
            zone = (loc.std_off, loc.dst)
            off = offsets.get(zone)
            if off is None:
                off = offsets[zone] = clock.offset(loc.std_off, loc.dst, day)
            offs = clock.offstr(off)
            base_local = day * DAY_MS + skew
            base_utc = day * DAY_MS - off * 60_000
            # the event text between eventTime (without its offset) and the SGTIN
            mid = offs + '","eventTimeZoneOffset":"' + offs + '","epcList":["'
            # plain events go straight into the partner's buffer (Sink.emit_plain, inlined: the hottest loop)
            buf = sink_buf.get(org_idx)
            if buf is None:
                buf = sink_buf[org_idx] = []
            seq = sink.seq
            plain = lost = 0
            # prescriptions waiting for stock (back-ordered for up to 6 days): products, days first asked
            again_prods: list[int] = []
            again_since: list[int] = []
            for i, prod in enumerate(prods):
                s = stock.get(prod)
                if s is None or not s.loose:
                    first = since[i] if since is not None else day
                    if day - first < 6:
                        again_prods.append(prod)
                        again_since.append(first)
                    else:
                        lost += 1
                    continue
                pid = s.loose.pop(0)
                label = None
                if watch_pid and (loc_idx, pid) in watch_pid:
                    label = watch_pid.pop((loc_idx, pid))
                elif watch_loc and loc_idx in watch_loc:
                    label = watch_loc[loc_idx](self, loc, pid, day)
                if miss and noise_random() < miss:
                    continue
                ms = int((9.0 + 11.0 * rng_random()) * HOUR_MS)
                if ready:
                    eid = ready.pop()
                else:  # a new batch (a scenario's hook may have drawn the last one)
                    eid = ids.next()
                    ready = ids._ready
                local_ms = skew + ms  # dispensing happens on the local business day: same date, unless skewed
                if 0 <= local_ms < DAY_MS:
                    minute, sec = date_hm[local_ms // 60_000], sms[local_ms % 60_000]
                else:
                    minute, sec = clock.local(base_local + ms, off)[: -len(offs)], ""
                # one f-string each: compiled, a single string build (a %-template is parsed at every event), and
                # no intermediate eventTime without its offset
                serial = serial_texts[pid]
                text = f"{_DISPENSING_HEAD}{eid}{_DISPENSING_TIME}{minute}{sec}{mid}{prefix[prod]}{serial}{tail}"
                ts = f"{minute}{sec}{offs}"
                late = self.late_days(org) if org.late else 0
                if label is None and not late:
                    seq += 1
                    buf.append((base_utc + ms, seq, text, ts, None))
                    plain += 1
                else:
                    sink.seq = seq
                    sink.emit(org_idx, base_utc + ms, text, eid, ts, "dispensing", label=label, late_days=late)
                    seq = sink.seq
                    buf = sink_buf[org_idx]  # emit may have flushed it into a document
                pool[prod].append((pid, loc_idx, day))
            sink.seq = seq
            if again_prods:
                backorders[loc_idx] = (again_prods, again_since)
            if lost:
                self.counts["lost_sales"] += lost
            if plain:
                key = (org_idx, "dispensing")
                step_counts[key] = step_counts.get(key, 0) + plain
                if len(buf) >= MAX_EVENTS_PER_DOCUMENT:
                    sink.flush(org_idx)
            pending = self.review.get(loc_idx)
            if pending is None:
                pending = self.review[loc_idx] = set()
            pending.update(prods)
        for loc in locs:
            if wd in loc.order_days and self.review.get(loc.idx):
                self._reorder(loc, sorted(self.review.pop(loc.idx)), day)

    def _dispenser_static(self, loc: Loc) -> _Dispenser:
        """What dispensing at a location needs every day: stock, partner, reporting habit, clock skew, SGTINs."""
        org = self.orgs[loc.org]
        miss = org.miss.get("dispensing", 0.0) * self.cfg.missing
        dl = org.digital_link
        # a dispensing event's text after its SGTIN
        tail = (
            '"],"action":"OBSERVE","bizStep":"dispensing","disposition":"dispensed","readPoint":{"id":"'
            + loc.sgln[dl]
            + '"}}'
        )
        return _Dispenser(self.stock[loc.idx], org, miss, self._sgtin_prefix[dl], tail)

    def _reorder(self, loc: Loc, touched: list[int], day: int) -> None:
        """On an ordering day: order up to cover the days until the next delivery, plus safety stock."""
        stock = self.stock[loc.idx]
        oo = self.on_order[loc.idx]
        mix = self.mix_h_list if loc.role == "hospital" else self.mix_r_list
        wd = self._weekday[day]
        gap = min((d - wd) % 7 or 7 for d in loc.order_days)
        boost = self.demand_boost.get(loc.idx)
        boosted = boost is not None and boost[1] <= day < boost[2]
        rate = loc.rate
        low_days, high_days = gap + 3, gap + 11
        for prod in touched:
            r = rate * mix[prod]
            if boosted and boost is not None and self.ctrl[prod]:
                r += rate * boost[0] * 0.5 / max(1, sum(self.ctrl))
            s_low = math.ceil(r * low_days) or 1  # (math.ceil called directly: compiled, it is inlined)
            s = stock.get(prod)
            pos = (len(s.loose) if s else 0) + oo.get(prod, 0)
            if pos <= s_low:
                s_high = max(s_low + 1, math.ceil(r * high_days))
                self.place_order(loc.idx, prod, s_high - pos, day)

    def place_order(self, buyer: int, prod: int, qty: int, day: int, supplier: int = -1, tag: Any = None) -> None:
        loc = self.locs[buyer]
        p = self.products[prod]
        label = None
        if supplier < 0:
            if p.repack_of >= 0:
                supplier = p.supply_loc
            else:
                ov = self.route_override.get(buyer)
                if ov is not None and self.ctrl[prod]:
                    suppliers, label = ov
                    # spread over the suppliers in turn, keeping each one's orders unremarkable
                    self.counts[f"rotation/{buyer}"] += 1
                    supplier = suppliers[self.counts[f"rotation/{buyer}"] % len(suppliers)]
                elif loc.controlled_supplier >= 0 and self.ctrl[prod]:
                    supplier = loc.controlled_supplier
                elif loc.secondary >= 0 and self.rng.random() < 0.12:
                    supplier = loc.secondary
                else:
                    supplier = loc.primary
        if supplier < 0:
            return
        starters = self._late_starters  # the late_starters property, inlined: it is asked once per order line
        if starters[0] != len(self.locs):
            starters = self._count_late_starters()
        if supplier in starters[1]:
            sorg = self.orgs[self.locs[supplier].org]
            if sorg.first_day > day and supplier != loc.primary and loc.primary >= 0:
                supplier = loc.primary
            elif day - sorg.first_day < 21 and tag is None:
                tag = "new_partner"
        oo = self.on_order[buyer]
        oo[prod] = oo.get(prod, 0) + qty
        lines = self.orders.get(supplier)
        if lines is None:
            lines = self.orders[supplier] = []
        lines.append((buyer, prod, qty, (label, tag)))

    # ---- distribution: pick, pack and ship the day's orders

    @property
    def late_starters(self) -> set[int]:
        """Locations of partners that start trading during the run (checked at each order)."""
        if self._late_starters[0] != len(self.locs):
            self._count_late_starters()
        return self._late_starters[1]

    def _count_late_starters(self) -> tuple[int, set[int]]:
        self._late_starters = (
            len(self.locs),
            {loc.idx for loc in self.locs if loc.first_day > 0 or self.orgs[loc.org].first_day > 0},
        )
        return self._late_starters

    def fulfil_day(self, day: int) -> None:
        orders, self.orders = self.orders, {}
        for supplier in sorted(orders):
            loc = self.locs[supplier]
            if loc.role in ("plant", "3pl"):
                self._fulfil_manufacturer(loc, orders[supplier], day)
            else:
                self._fulfil_distributor(loc, orders[supplier], day)

    def _take_units(
        self, loc: Loc, prod: int, qty: int, day: int, t_pick: int, whole_cases: bool
    ) -> tuple[list[int], list[int]]:
        """Pick qty units: (packages, sealed cases). Opens cases as needed; skips short-dated stock."""
        picked = self.picked.get(loc.idx)
        if picked is None:
            picked = self.picked[loc.idx] = set()
        picked.add(prod)
        stock = self.stock[loc.idx]
        s = stock.get(prod)
        pkgs: list[int] = []
        cases: list[int] = []
        if s is None:
            return pkgs, cases
        lot_exp = self.lot_exp
        lot_of = self.pkg_lot
        limit = day + 10
        case_pkgs = self.case_pkgs
        if whole_cases:
            while qty > 0 and s.cases:
                c = s.cases.pop(0)
                if lot_exp[lot_of[case_pkgs[c][0]]] <= limit + 30:
                    self._quarantine(loc, c, case=True)
                    continue
                cases.append(c)
                qty -= len(case_pkgs[c])
            if qty <= 0:
                return pkgs, cases
            # not enough sealed cases: the rest goes as eaches from open stock
        loose = s.loose
        while qty > 0:
            if not loose:
                if not s.cases:
                    break
                c = s.cases.pop(0)
                self.unpack_case(loc, c, t_pick)
                loose.extend(case_pkgs.pop(c))
                continue
            # the first qty packages, unless one of them is short-dated (then one at a time)
            n = min(qty, len(loose))
            if self._none_expire(loose, n, limit):
                pkgs += loose[:n]
                del loose[:n]
                qty -= n
                continue
            p = loose.pop(0)
            if lot_exp[lot_of[p]] <= limit:
                self._quarantine(loc, p, case=False)
                continue
            pkgs.append(p)
            qty -= 1
        return pkgs, cases

    def _none_expire(self, pkgs: list[int], n: int, limit: int) -> bool:
        """Whether none of the first n packages expires by day limit (compiled, all() over a generator is a loop)."""
        lot_exp, lot_of = self.lot_exp, self.pkg_lot
        return all(lot_exp[lot_of[pkgs[i]]] > limit for i in range(n))

    def _quarantine(self, loc: Loc, item: int, case: bool) -> None:
        self.expired_hold.setdefault(loc.idx, []).append((item, case))

    def _fulfil_distributor(self, loc: Loc, orders: list, day: int) -> None:
        by_buyer: dict[tuple[int, bool, Any], list[tuple[int, int, Any]]] = {}
        ctrl = self.ctrl
        for buyer, prod, qty, meta in orders:
            # controlled substances travel in their own tote with their own paperwork (CSOS / Form 222)
            key = (buyer, ctrl[prod], meta[0])
            by_buyer.setdefault(key, []).append((prod, qty, meta))
        org = self.orgs[loc.org]
        t_pick = self.t_at(loc, day, 14.0, 16.5)
        case_pkgs = self.case_pkgs
        stock = self.stock[loc.idx]
        picked = self.picked.get(loc.idx)
        if picked is None:
            picked = self.picked[loc.idx] = set()
        limit = day + 10
        for (buyer, _ctrl, label), items in by_buyer.items():
            bloc = self.locs[buyer]
            holder = bloc.role not in DISPENSER_ROLES
            sh = Shipment(loc.idx, buyer, loc.org, bloc.org)
            unfilled: dict[int, int] = {}
            tag = None
            for prod, qty, meta in items:
                s = stock.get(prod)
                if s is None or not (s.loose or s.cases):  # nothing to pick (a third of the lines, in a shortage)
                    picked.add(prod)
                    got = 0
                elif not holder and 0 < qty <= len(s.loose) and self._none_expire(s.loose, qty, limit):
                    # the common line, _take_units inlined: a dispenser's order filled from open stock, none of
                    # it short-dated
                    picked.add(prod)
                    sh.pkgs += s.loose[:qty]
                    del s.loose[:qty]
                    got = qty
                else:
                    pk, cs = self._take_units(loc, prod, qty, day, t_pick, whole_cases=holder)
                    sh.pkgs.extend(pk)
                    sh.cases.extend(cs)
                    got = len(pk) + (sum(len(case_pkgs[c]) for c in cs) if cs else 0)
                sh.qty[prod] = sh.qty.get(prod, 0) + qty
                if got < qty:
                    unfilled[prod] = qty - got
                if meta[1] is not None:
                    tag = meta[1]
            if unfilled:
                for prod, q in unfilled.items():
                    sh.qty[prod] -= q
                    self.on_order[buyer][prod] = max(0, self.on_order[buyer].get(prod, 0) - q)
                    if prod in self.shortage and not holder and self.shortage[prod][0] <= day < self.shortage[prod][1]:
                        self._reroute(buyer, prod, q, loc.idx, day)
            if not sh.pkgs and not sh.cases:
                continue
            if unfilled and tag is None:
                tag = "partial_shipment"
            if label is not None:
                sh.label_ship = label("ship", sh)
                sh.label_recv = label("receive", sh)
            sh.tag = tag
            if bloc.org == loc.org:
                sh.kind = "transfer"
            if self.ship_hooks and not holder and label is None:
                taken = next((h for h in self.ship_hooks if loc.idx in h[0] and h[1](self, sh, day)), None)
                if taken is not None:
                    self.ship_hooks.remove(taken)
                    continue
            # split shipments: part today, the rest tomorrow under the same purchase order
            if len(sh.pkgs) >= 4 and not holder and label is None and self.noise_rng.random() < 0.04 * self.cfg.noise:
                cut = len(sh.pkgs) // 2
                rest = Shipment(loc.idx, buyer, loc.org, bloc.org, pkgs=sh.pkgs[cut:], kind=sh.kind)
                sh.pkgs = sh.pkgs[:cut]
                sh.tag = "split_shipment"
                rest.tag = "split_shipment"
                sh.po = self.number(bloc.org, "PO")
                rest.po = sh.po
                self.ship(sh, day)
                self.agenda[day + 1].append(("call", lambda sim, d, r=rest: sim._ship_rest(r, d)))
                continue
            self._ship_with_noise(sh, day, org)

    def _ship_rest(self, sh: Shipment, day: int) -> None:
        """The second part of a split shipment; goods of a lot recalled overnight go back instead."""
        lot_of, recalled = self.pkg_lot, self.recalled
        if recalled and any(lot_of[p] in recalled for p in sh.pkgs):
            seller = self.locs[sh.seller]
            self.return_to_rd(seller, [p for p in sh.pkgs if lot_of[p] in recalled], day, "recalled", "recall_return")
            sh.pkgs = [p for p in sh.pkgs if lot_of[p] not in recalled]
            if not sh.pkgs:
                return
        self.ship(sh, day)

    def _ship_with_noise(self, sh: Shipment, day: int, org: Org) -> None:
        noise = self.noise_rng.random()
        n = self.cfg.noise
        if sh.label_ship is None and sh.kind == "sale" and noise < 0.003 * n and len(sh.pkgs) >= 2:
            self._ship_with_correction(sh, day)
            return
        if sh.label_ship is None and sh.kind == "sale" and noise < 0.005 * n:
            self._ship_and_void(sh, day)
            return
        self.ship(sh, day)
        if sh.label_ship is None and sh.kind == "sale" and 0.005 * n <= noise < 0.007 * n and sh.ship_event:
            self._duplicate_then_retract(sh, day)

    def _reroute(self, buyer: int, prod: int, qty: int, failed: int, day: int) -> None:
        """Shortage: the dispenser buys from whoever has stock, often far away or through a secondary."""
        cands = []
        for li in self.dc_locs:
            if li != failed:
                s = self.stock[li].get(prod)
                if s is not None and (s.loose or s.cases):
                    cands.append(li)
        if not cands:
            return
        supplier = self.rng.choice(cands)
        self.agenda[day + 1].append(
            (
                "call",
                lambda sim, d, b=buyer, p=prod, q=qty, s=supplier: sim.place_order(
                    b, p, q, d, supplier=s, tag="shortage_reroute"
                ),
            )
        )

    def _fulfil_manufacturer(self, loc: Loc, orders: list, day: int) -> None:
        per_buyer: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for buyer, prod, qty, _meta in orders:
            per_buyer.setdefault((buyer, self.products[prod].mfr), []).append((prod, qty))
        is_3pl = loc.role == "3pl"
        for (buyer, owner), items in per_buyer.items():
            bloc = self.locs[buyer]
            sh = Shipment(loc.idx, buyer, owner, bloc.org)
            if is_3pl:
                sh.possessor_from = loc.org
                sh.submitter = loc.org
                sh.tag = "3pl_hop"
            if bloc.role == "3pl":  # manufacturer moving its own stock into its 3PL: ownership stays
                sh.owner_to = owner
                sh.possessor_to = bloc.org
                sh.kind = "transfer"
            cases: list[int] = []
            for prod, qty in items:
                p = self.products[prod]
                n_cases = max(1, math.ceil(qty / p.case_size))
                s = self.stock[loc.idx].get(prod)
                if s is None:
                    s = self.stock[loc.idx][prod] = Stock()
                if len(s.cases) < n_cases:
                    if is_3pl:
                        n_cases = len(s.cases)
                    else:
                        self.produce(loc, prod, n_cases - len(s.cases), day)
                for _ in range(n_cases):
                    if not s.cases:
                        break
                    cases.append(s.cases.pop(0))
                sh.qty[prod] = sh.qty.get(prod, 0) + qty
            if not cases:
                self.agenda[day + 1].append(("cancel", buyer, dict(sh.qty)))
                continue
            if len(cases) >= 4:
                org = self.orgs[loc.org]
                t_pack = self.t_at(loc, day, 12.0, 15.0)
                for i in range(0, len(cases), PALLET_CASES):
                    chunk = cases[i : i + PALLET_CASES]
                    pal = self.new_container(org, chunk, pallet=True)
                    if not self.missing(org, "packing"):
                        dl = org.digital_link
                        self.emit_aggregation(
                            loc,
                            t_pack,
                            self.cont_epc[pal][dl],
                            [self.cont_epc[c][dl] for c in chunk],
                            "ADD",
                            "packing",
                            "in_progress",
                            late_days=0,
                        )
                    sh.pallets.append(pal)
            else:
                sh.cases = cases
            self.ship(sh, day)

    # ---- production

    def lot_number(self, org: Org, day: int) -> str:
        d = self.cfg.start + dt.timedelta(days=day)
        n = self.rng.randrange(1000, 9999)
        style = org.lot_style
        if style == 0:
            return f"{chr(65 + self.rng.randrange(26))}{d.year % 100:02d}{n:04d}"
        if style == 1:
            return f"{d.year % 100:02d}{d.timetuple().tm_yday:03d}{self.rng.randrange(10, 99)}"
        if style == 2:
            return (
                f"{chr(65 + self.rng.randrange(26))}{chr(65 + self.rng.randrange(26))}{n:04d}{self.rng.randrange(10)}"
            )
        return f"{self.rng.randrange(100000, 999999)}"

    def new_lot(self, org: Org, prod: int, day: int, shelf_days: int | None = None, number: str | None = None) -> Lot:
        p = self.products[prod]
        plan = self.lot_plan.get(prod)
        short = False
        if shelf_days is None:
            if plan and plan[0][0] <= day:
                _, exp_day = plan.pop(0)
                shelf_days = max(20, exp_day - day)
                short = True
            elif self.noise_rng.random() < 0.04 * self.cfg.noise:
                shelf_days = self.noise_rng.randint(35, 110)  # packaged from old bulk: short-dated lot
                short = True
            else:
                shelf_days = p.shelf_life_days
        exp = self.cfg.start + dt.timedelta(days=day + shelf_days)
        # expiry is printed as the last day of its month, unless the lot is short-dated
        if not short:
            nxt = (exp.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
            exp = nxt - dt.timedelta(days=1)
        exp_day = (exp - self.cfg.start).days
        lot = Lot(len(self.lots), prod, number or self.lot_number(org, day), exp_day, exp.isoformat(), day, short=short)
        self.add_lot(lot)
        self.lots_of[prod].append(lot.idx)
        if lot.expiry_day < self.cfg.days + 60:
            self.short_lots.append(lot.idx)
        return lot

    def produce_short_dated(self, prod: int, day: int, expiry_day: int, cases: int = 2) -> Lot:
        """A lot packaged from old bulk, expiring on a given day, put first in line at the plant."""
        p = self.products[prod]
        plant = self.locs[self.orgs[p.mfr].locations[0]]
        self.lot_plan[prod].insert(0, (day, expiry_day))
        s = self.stock[plant.idx].setdefault(prod, Stock())
        before = list(s.cases)
        s.cases.clear()
        self.produce(plant, prod, cases, day, cases=cases)
        made = list(s.cases)
        s.cases.clear()
        s.cases.extend(made + before)
        return self.lots[self.pkg_lot[self.case_pkgs[made[0]][0]]]

    def add_lot(self, lot: Lot) -> None:
        self.lots.append(lot)
        self.lot_exp.append(lot.expiry_day)

    def produce(self, loc: Loc, prod: int, min_cases: int, day: int, cases: int | None = None) -> None:
        p = self.products[prod]
        org = self.orgs[loc.org]
        rate = float(self.exp.get(loc.idx, np.zeros(self._P))[prod])
        cover = self.rng.uniform(40, 75)
        n_cases = cases or max(min_cases, math.ceil(rate * cover / p.case_size), 2)
        sh = self.shortage.get(prod)
        if sh and sh[0] <= day < sh[1]:
            n_cases = max(1, min_cases // 3)
        lot = self.new_lot(org, prod, day)
        s = self.stock[loc.idx].setdefault(prod, Stock())
        t = self.t_at(loc, day, 6.0, 8.0)
        step = max(20_000, int(9 * HOUR_MS / max(1, n_cases)))
        dl = org.digital_link
        miss_pack = org.miss.get("packing", 0.0)
        late = self.late_days(org) if org.late else 0  # serialization data of a lot is uploaded together
        ilmd_t = ilmd_text(lot.number, lot.expiry)
        sg = loc.sgln[dl]
        size = p.case_size
        made = self.new_packages(prod, lot.idx, size * n_cases)  # the serials of a run are drawn together
        prefix, texts = self._sgtin_prefix[dl][prod], self.pkg_text
        for k in range(n_cases):
            pids = made[k * size : (k + 1) * size]
            epcs = [prefix + x for x in texts[pids.start : pids.stop]]
            ts, off = self.stamp(loc, t)
            eid = self.ids.next()
            self.sink.emit(
                org.idx,
                t,
                object_event(eid, ts, off, epcs, "ADD", "commissioning", "active", sg, sg, "", ilmd_t),
                eid,
                ts,
                "commissioning",
                late_days=late,
            )
            case = self.new_container(org, list(pids), pallet=False)
            if not (miss_pack and self.noise_rng.random() < miss_pack * self.cfg.missing):
                self.emit_aggregation(
                    loc, t + 60_000, self.cont_epc[case][dl], epcs, "ADD", "packing", "in_progress", late_days=late
                )
            s.cases.append(case)
            t += step

    # ---- repackaging (TransformationEvent)

    def repackage(
        self,
        loc: Loc,
        out_prod: int,
        n_inputs: int,
        day: int,
        *,
        label: Any = None,
        expiry_shift: int = 0,
        extra_outputs: int = 0,
        expiry_over_input: bool = False,
    ) -> list[int]:
        p = self.products[out_prod]
        org = self.orgs[loc.org]
        inputs, _ = self._take_units(loc, p.repack_of, n_inputs, day, self.t_at(loc, day, 7.0, 8.0), whole_cases=False)
        if not inputs:
            return []
        in_exp = min(self.lots[self.pkg_lot[i]].expiry_day for i in inputs)
        shelf = (in_exp - day + expiry_shift) if expiry_over_input else min(365, in_exp - day)
        lot = self.new_lot(org, out_prod, day, shelf_days=max(20, shelf))
        outs = list(self.new_packages(out_prod, lot.idx, len(inputs) * p.repack_ratio + extra_outputs))
        dl = org.digital_link
        t = self.t_at(loc, day, 8.0, 14.0)
        ts, off = self.stamp(loc, t)
        eid = self.ids.next()
        sg = loc.sgln[dl]
        text = "".join(
            (
                '{"type":"TransformationEvent","eventID":"',
                eid,
                '","eventTime":"',
                ts,
                '","eventTimeZoneOffset":"',
                off,
                '","inputEPCList":["',
                '","'.join(self.epcs(inputs, dl)),
                '"],"outputEPCList":["',
                '","'.join(self.epcs(outs, dl)),
                '"],"bizStep":"repackaging","disposition":"active","readPoint":{"id":"',
                sg,
                '"},"bizLocation":{"id":"',
                sg,
                '"}',
                ilmd_text(lot.number, lot.expiry),
                "}",
            )
        )
        self.sink.emit(org.idx, t, text, eid, ts, "repackaging", label=label)
        s = self.stock[loc.idx].setdefault(out_prod, Stock())
        for i in range(0, len(outs), p.case_size):
            chunk = outs[i : i + p.case_size]
            case = self.new_container(org, chunk, pallet=False)
            self.emit_aggregation(
                loc,
                t + 120_000 + i,
                self.cont_epc[case][dl],
                self.epcs(chunk, dl),
                "ADD",
                "packing",
                "in_progress",
            )  # packing the outputs is ordinary: only the transformation's claim is false (label stays there)
            s.cases.append(case)
        return outs

    # ---- replenishment of holders

    def replenish_day(self, day: int) -> None:
        if self._replenishers[0] != len(self.locs):  # scenarios and newcomers add locations during the run
            self._replenishers = (
                len(self.locs),
                [loc for loc in self.locs if loc.role in ("dc", "chain_dc", "repack", "3pl")],
            )
        for loc in self._replenishers[1]:
            exp = self.exp.get(loc.idx)
            if exp is None:
                continue
            if loc.first_day > day or self.orgs[loc.org].first_day > day:
                continue
            stock = self.stock[loc.idx]
            oo = self.on_order[loc.idx]
            if day % 7 == loc.idx % 7 or day < 3:
                prods = self._exp_nonzero.get(loc.idx)
                if prods is None:
                    prods = self._exp_nonzero[loc.idx] = np.nonzero(exp)[0].tolist()
            else:
                touched = self.picked.pop(loc.idx, None)
                if not touched:
                    continue
                prods = sorted(touched)
            for prod in prods:
                if not exp[prod]:
                    continue
                p = self.products[prod]
                if loc.role == "repack" and p.repack_of >= 0:
                    continue
                if p.repack_of >= 0 and loc.role != "repack":
                    continue
                rate = float(exp[prod])
                src = self.supplier_of(loc, p)
                if src == loc.idx:
                    continue
                lead = self.lead.get((loc.idx, src))
                if lead is None:
                    lead = self.lead[(loc.idx, src)] = 2 + int(self.net.distance(loc.idx, src) // GROUND_KM_PER_DAY)
                s = stock.get(prod)
                pos = oo.get(prod, 0)
                if s is not None:
                    pos += len(s.loose) + len(s.cases) * p.case_size
                reorder = rate * (lead + 4)
                if pos <= reorder:
                    target = rate * (lead + 14)
                    qty = max(p.case_size, math.ceil((target - pos) / p.case_size) * p.case_size)
                    self.place_order(loc.idx, prod, qty, day, supplier=src)
            if loc.role == "repack":
                self._repack_day(loc, day)

    def _repack_day(self, loc: Loc, day: int) -> None:
        exp = self.exp[loc.idx]
        for p in self.products:
            if p.supply_loc != loc.idx or p.repack_of < 0:
                continue
            s = self.stock[loc.idx].get(p.idx)
            have = (len(s.loose) + len(s.cases) * p.case_size) if s else 0
            rate = float(exp[p.idx])
            if have <= rate * 5:
                need = math.ceil(rate * 15 / p.repack_ratio)
                self.repackage(loc, p.idx, max(1, need), day)

    def manufacture_day(self, day: int) -> None:
        # Production happens on demand inside _fulfil_manufacturer; recalls are scheduled here.
        for prod in self.recall_plan.pop(day, []):
            self.recall(prod, day)

    # ------------------------------------------------------------------ returns, expiry, recalls, noise

    def noise_day(self, day: int) -> None:
        rng = self.noise_rng
        n = self.cfg.noise
        # saleable returns (overstock, ordered in error): dispenser -> its supplier
        k = self.np.binomial(len(self.disp_locs), min(1.0, 0.006 * n))
        for i in sorted(self.np.choice(len(self.disp_locs), size=k, replace=False).tolist()) if k else []:
            loc = self.disp_locs[i]
            if loc.first_day > day:
                continue
            stock = self.stock[loc.idx]
            prods = [p for p, s in stock.items() if len(s.loose) >= 2]
            if not prods:
                continue
            prod = rng.choice(prods)
            s = stock[prod]
            k = min(len(s.loose) - 1, rng.randint(1, 3))
            pkgs = [s.loose.pop() for _ in range(k)]
            damaged = rng.random() < 0.25
            unsaleable = self._recalled_or_expired(pkgs, day)
            if unsaleable:  # found while sorting returns: they go to destruction, not back to the wholesaler
                what = "recalled" if self.pkg_lot[unsaleable[0]] in self.recalled else "expired"
                self.return_to_rd(loc, unsaleable, day, what, tag=RETURN_TAG[what])
                pkgs = [p for p in pkgs if p not in unsaleable]
                if not pkgs:
                    continue
            if damaged:
                self.return_to_rd(loc, pkgs, day, "damaged", tag="nonsaleable_return")
            else:
                supplier = loc.primary if self.products[prod].repack_of < 0 else self.products[prod].supply_loc
                if self.locs[supplier].role in ("plant", "3pl"):
                    supplier = loc.primary
                sh = Shipment(
                    loc.idx,
                    supplier,
                    loc.org,
                    self.locs[supplier].org,
                    pkgs=pkgs,
                    kind="return",
                    disposition="returned",
                )
                sh.tag = "saleable_return"
                sh.recv_tag = "saleable_return"
                self.ship(sh, day, self.t_at(loc, day, 12.0, 18.0))
        if day % 7 == 3:
            self.expire(day)
        # short-dated stock set aside at picking goes back once it has expired
        for loc_idx, held in list(self.expired_hold.items()):
            if not held or rng.random() >= 0.3:
                continue
            lot_exp, lot_of, case_pkgs = self.lot_exp, self.pkg_lot, self.case_pkgs
            due = [
                (item, is_case)
                for item, is_case in held
                if lot_exp[lot_of[case_pkgs[item][0] if is_case else item]] <= day
            ]
            if not due:
                continue
            self.expired_hold[loc_idx] = [h for h in held if h not in due]
            loc = self.locs[loc_idx]
            pkgs = []
            for item, is_case in due:
                if is_case:
                    self.unpack_case(loc, item, self.t_at(loc, day, 9.0, 10.0))
                    pkgs.extend(case_pkgs.pop(item))
                else:
                    pkgs.append(item)
            lot = self.lots[lot_of[pkgs[0]]]
            if self.scenarios is not None and self.scenarios.divert_expired(self, loc, lot, pkgs, day):
                continue
            self.return_to_rd(loc, pkgs, day, "expired", tag="expiry_return")

    def _recalled_or_expired(self, pkgs: list[int], day: int) -> list[int]:
        lot_of, lot_exp, recalled = self.pkg_lot, self.lot_exp, self.recalled
        return [p for p in pkgs if lot_of[p] in recalled or lot_exp[lot_of[p]] < day]

    def return_to_rd(self, loc: Loc, pkgs: list[int], day: int, reason: str, tag: str, label: Any = None) -> None:
        """Segregate non-saleable packages and send them to a reverse distributor for destruction."""
        if not pkgs or not self.net.reverse_locs:
            return
        rd = self._rd_of.get(loc.idx, -1)
        if rd < 0:  # the reverse distributors are fixed when the network is built: the nearest one stays so
            rd = self._rd_of[loc.idx] = self.net.nearest(loc.idx, self.net.reverse_locs)
        org = self.orgs[loc.org]
        dl = org.digital_link
        t = self.t_at(loc, day, 9.0, 12.0)
        epcs = self.epcs(pkgs, dl)
        if self.copy_of:
            epcs = list(dict.fromkeys(epcs))
        self.emit_object(loc, t, epcs, "OBSERVE", "holding", reason, tag=tag, label=label)
        sh = Shipment(
            loc.idx,
            rd,
            loc.org,
            self.locs[rd].org,
            pkgs=pkgs,
            kind="return_rd",
            disposition=reason if reason in ("expired", "recalled", "damaged") else "non_sellable_other",
        )
        sh.tag = tag
        sh.recv_tag = tag
        sh.arrive_day = day + 2 + int(self.net.distance(loc.idx, rd) // GROUND_KM_PER_DAY)
        self.ship(sh, day, t + int(self.rng.uniform(2, 6) * HOUR_MS))

    def _destroy(self, loc_idx: int, sh: Shipment, day: int) -> None:
        loc = self.locs[loc_idx]
        org = self.orgs[loc.org]
        dl = org.digital_link
        pkgs = list(sh.pkgs)
        for c in sh.cases:
            pkgs.extend(self.case_pkgs.pop(c, []))
        if not pkgs:
            return
        t = self.t_at(loc, day, 9.0, 16.0)
        epcs = self.epcs(pkgs, dl)
        if self.copy_of:
            epcs = list(dict.fromkeys(epcs))
        self.emit_object(loc, t, epcs, "DELETE", "destroying", "destroyed", tag="destruction")
        for p in pkgs:
            self.destroyed_pool.append((p, day))

    def _restock(self, loc_idx: int, pkgs: list[int], sh: Shipment, day: int) -> None:
        loc = self.locs[loc_idx]
        org = self.orgs[loc.org]
        dl = org.digital_link
        t = self.t_at(loc, day, 9.0, 16.0)
        self.emit_object(
            loc,
            t,
            self.epcs(pkgs, dl),
            "OBSERVE",
            "stocking",
            "sellable_accessible",
            tag=sh.recv_tag or "saleable_return",
            label=sh.label_restock,
        )
        stock = self.stock[loc_idx]
        for p in pkgs:
            self._stock(stock, p).loose.append(p)
        if self.recalled:
            lots = {self.pkg_lot[p] for p in pkgs if self.pkg_lot[p] in self.recalled}
            if lots:
                self._send_back_recalled(loc, lots, day + 1)

    def holders_of_lot(self, lot_idx: int) -> list[tuple[int, list[int], list[int]]]:
        """Every location holding packages of a lot: (loc, loose packages, sealed cases), removed from stock."""
        prod = self.lots[lot_idx].prod
        out = []
        lot_of = self.pkg_lot
        for li, stock in enumerate(self.stock):
            s = stock.get(prod)
            if s is None or self.locs[li].role == "returns":
                continue
            loose = [p for p in s.loose if lot_of[p] == lot_idx]
            cases = [c for c in s.cases if lot_of[self.case_pkgs[c][0]] == lot_idx]
            if loose or cases:
                if loose:
                    s.loose = [p for p in s.loose if lot_of[p] != lot_idx]
                if cases:
                    s.cases = [c for c in s.cases if lot_of[self.case_pkgs[c][0]] != lot_idx]
                out.append((li, loose, cases))
        return out

    def expire(self, day: int) -> None:
        keep = []
        for lot_idx in self.short_lots:
            lot = self.lots[lot_idx]
            if lot.expiry_day > day + 7:  # weekly sweeps: a lot is pulled before the week it expires in
                keep.append(lot_idx)
                continue
            for li, loose, cases in self.holders_of_lot(lot_idx):
                loc = self.locs[li]
                pkgs = list(loose)
                for c in cases:
                    self.unpack_case(loc, c, self.t_at(loc, day, 8.0, 9.0))
                    pkgs.extend(self.case_pkgs.pop(c))
                if self.scenarios is not None and self.scenarios.divert_expired(self, loc, lot, pkgs, day):
                    continue
                self.return_to_rd(loc, pkgs, day, "expired", tag="expiry_return")
        self.short_lots = keep

    def recall(self, prod: int, day: int, lot_idx: int | None = None) -> Lot | None:
        """A manufacturer recalls a lot: class-level notice, then every holder returns its stock."""
        lots = [
            i
            for i in self.lots_of.get(prod, [])
            if self.lots[i].made_day < day - 3 and not self.lots[i].short and self.lots[i].recalled_day < 0
        ]
        if lot_idx is None:
            if not lots:
                return None
            lot_idx = lots[-1] if len(lots) < 2 else lots[-2]
        lot = self.lots[lot_idx]
        lot.recalled_day = day
        self.recalled.add(lot_idx)
        self._mark_in_transit(lot_idx)
        p = self.products[prod]
        mfr = self.orgs[p.mfr]
        plant = self.locs[mfr.locations[0]]
        dl = mfr.digital_link
        t = self.t_at(plant, day, 9.0, 11.0)
        self.emit_object(
            plant,
            t,
            [],
            "OBSERVE",
            "holding",
            "recalled",
            qty=[{"epcClass": ids.lgtin(p.gtin, p.prefix_len, lot.number, dl), "quantity": lot.size}],
            tag="recall",
            late=False,
        )
        for li, loose, cases in self.holders_of_lot(lot_idx):
            loc = self.locs[li]
            pkgs = list(loose)
            for c in cases:
                self.unpack_case(loc, c, self.t_at(loc, day + 1, 8.0, 9.0))
                pkgs.extend(self.case_pkgs.pop(c))
            if self.scenarios is not None and self.scenarios.divert_recalled(self, loc, lot, pkgs, day + 1):
                continue
            if self.missing(self.orgs[loc.org], "receiving"):  # the same partners that skip receipts skip this
                continue
            self.return_to_rd(loc, pkgs, day + 1 + self.rng.randrange(3), "recalled", tag="recall_return")
        return lot

    # ---- benign corrections

    def _ship_with_correction(self, sh: Shipment, day: int) -> None:
        """The shipper lists a package it did not ship, then retracts the event and sends the right one."""
        s = self.stock[sh.seller].get(self.pkg_prod[sh.pkgs[0]])
        if s is None or not s.loose:
            self.ship(sh, day)
            return
        good_pkgs = list(sh.pkgs)
        sh.pkgs = [*good_pkgs, s.loose[0]]
        sh.no_receive = True
        sh.tag = "error_declared"
        seller = self.locs[sh.seller]
        org = self.orgs[seller.org]
        dl = org.digital_link
        # the erroneous event is sent on time, so the retraction can follow it
        saved_late, org.late = org.late, 0.0
        eid = self.ship(sh, day, force=True)
        org.late = saved_late
        sh.pkgs = good_pkgs
        sh.no_receive = False
        t_fix = sh.t_ship + int(self.noise_rng.uniform(2, 30) * HOUR_MS)
        corrective = self.ids.next()
        extra = self.parties(sh, dl)
        wrong = [*self.shipment_epcs(sh, dl), self.epc(s.loose[0], dl)]
        # the retraction and its correction are sent once the mistake is found, in a later document
        defer = 1 + int((t_fix - day * DAY_MS) // DAY_MS)
        self.emit_object(
            seller,
            sh.t_ship,
            wrong,
            "OBSERVE",
            "shipping",
            sh.disposition,
            extra=extra,
            biz_location=False,
            eid=eid,
            tag="error_declaration",
            late=False,
            defer_days=defer,
            error_declaration={
                "declarationTime": self.clock.utc(t_fix),
                "reason": "incorrect_data",
                "correctiveEventIDs": [corrective],
            },
        )
        self.emit_object(
            seller,
            sh.t_ship,
            self.shipment_epcs(sh, dl),
            "OBSERVE",
            "shipping",
            sh.disposition,
            extra=extra,
            biz_location=False,
            eid=corrective,
            tag=("corrective_event", self.transfer_key(sh)),
            late=False,
            defer_days=defer,
        )
        sh.ship_event = corrective
        self.agenda[sh.arrive_day].append(("receive", sh))

    def _duplicate_then_retract(self, sh: Shipment, day: int) -> None:
        """A shipment scanned twice: the second event is declared did_not_occur."""
        seller = self.locs[sh.seller]
        org = self.orgs[seller.org]
        dl = org.digital_link
        t = sh.t_ship + int(self.noise_rng.uniform(20, 600) * 1000)
        extra = self.parties(sh, dl)
        epcs = self.shipment_epcs(sh, dl)
        eid, _ = self.emit_object(
            seller,
            t,
            epcs,
            "OBSERVE",
            "shipping",
            "in_transit",
            extra=extra,
            biz_location=False,
            tag="duplicate_scan",
            late=False,
        )
        t_fix = t + int(self.noise_rng.uniform(1, 48) * HOUR_MS)
        self.emit_object(
            seller,
            t,
            epcs,
            "OBSERVE",
            "shipping",
            "in_transit",
            extra=extra,
            biz_location=False,
            eid=eid,
            tag="error_declaration",
            late=False,
            defer_days=1 + int((t_fix - day * DAY_MS) // DAY_MS),
            error_declaration={"declarationTime": self.clock.utc(t_fix), "reason": "did_not_occur"},
        )

    def _ship_and_void(self, sh: Shipment, day: int) -> None:
        """Shipped, then cancelled before it left the dock: a legitimate 'shipped, never received'."""
        sh.no_receive = True
        sh.tag = "void_shipping"
        seller = self.locs[sh.seller]
        org = self.orgs[seller.org]
        saved_late, org.late = org.late, 0.0
        self.ship(sh, day, force=True)
        org.late = saved_late
        dl = org.digital_link
        self.emit_object(
            seller,
            sh.t_ship + int(self.noise_rng.uniform(0.5, 3) * HOUR_MS),
            self.shipment_epcs(sh, dl),
            "OBSERVE",
            "void_shipping",
            "sellable_accessible",
            extra=self.parties(sh, dl),
            tag=("void_shipping", self.transfer_key(sh)),
            late=False,
        )
        stock = self.stock[sh.seller]
        for p in sh.pkgs:
            self._stock(stock, p).loose.insert(0, p)
        for c in sh.cases:
            self._stock_case(stock, c)
        self.agenda[self.day + 1].append(("cancel", sh.buyer, dict(sh.qty)))
