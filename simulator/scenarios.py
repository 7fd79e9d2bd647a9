"""Labelled anomaly scenarios, each with a rate, a subtlety and a camouflaged variant.

Knobs (``--scenarios "name:rate=4:subtlety=0.5:camouflage=0.5,other"``):
    rate        incidents per 100,000 events (at least two incidents per enabled scenario)
    subtlety    0 = blatant, 1 = as close to normal as the scenario allows (quantities, distances,
                delays); each incident draws its own value around this one
    camouflage  share of incidents run as the camouflaged variant, which imitates normal
                partners: an established, licensed partner with a trading history, realistic
                quantities mixed into genuine shipments, ordinary transit times

Ground truth never enters the events: incidents only choose who does what; the events they
cause look like any other. Labels go to the Sink with each event and are written to
labels.jsonl beside the documents. No Django here.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from simulator import ids
from simulator.engine import DC_OR_DISPENSER, DISPENSER_ROLES, RETURN_TAG, Lot, Shipment, Simulation, Stock
from simulator.events import DAY_MS, HOUR_MS
from simulator.geo import haversine_km


@dataclass(frozen=True)
class ScenarioInfo:
    description: str
    rate: float  # default incidents per 100k events
    window: tuple[float, float] = (0.15, 0.8)  # when incidents start, as a share of the horizon


SCENARIOS: dict[str, ScenarioInfo] = {
    "serial_cloning": ScenarioInfo(
        "genuine serials copied onto other packs: one serial at two custodians at once", 3.0
    ),
    "counterfeit_injection": ScenarioInfo(
        "never-commissioned serials sold through an unlicensed or new intermediary", 3.0, (0.2, 0.8)
    ),
    "diversion_loop": ScenarioInfo("a dispenser sells product back into distribution: grey-market loop", 3.0),
    "impossible_travel": ScenarioInfo("custody that moves faster than trucks, or is received before it ships", 3.0),
    "quantity_inflation": ScenarioInfo("more units received, reported or repackaged than were shipped or input", 3.0),
    "reappearing_serial": ScenarioInfo("dispensed or destroyed serials come back into distribution", 3.0, (0.35, 0.85)),
    "expired_recalled_reentry": ScenarioInfo(
        "expired or recalled lots shipped on instead of returned", 3.0, (0.3, 0.8)
    ),
    "theft": ScenarioInfo("a shipment is shipped and never received, then surfaces elsewhere", 3.0, (0.15, 0.6)),
    "relabelled_lot": ScenarioInfo("lot or expiry restated, contradicting commissioning", 3.0),
    "pill_mill": ScenarioInfo(
        "a dispenser buys controlled drugs far above its peers from many suppliers", 2.0, (0.15, 0.55)
    ),
    "return_fraud": ScenarioInfo("a 'saleable return' of serials the returner never received", 2.0),
}
MIN_INCIDENTS = 2


@dataclass
class Knobs:
    rate: float
    subtlety: float = 0.5
    camouflage: float = 0.5

    def as_dict(self) -> dict[str, float]:
        return {"rate": self.rate, "subtlety": self.subtlety, "camouflage": self.camouflage}


def parse_scenarios(
    text: str | None, *, rate_scale: float = 1.0, subtlety: float | None = None, camouflage: float | None = None
) -> dict[str, Knobs]:
    """'all', 'none', or 'name[:rate=R][:subtlety=S][:camouflage=C],...'."""
    text = (text or "all").strip()
    if text == "none":
        return {}
    chosen: dict[str, Knobs] = {}
    parts = list(SCENARIOS) if text == "all" else [p.strip() for p in text.split(",") if p.strip()]
    for part in parts:
        name, *opts = part.split(":")
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
        k = Knobs(SCENARIOS[name].rate * rate_scale)
        if subtlety is not None:
            k.subtlety = subtlety
        if camouflage is not None:
            k.camouflage = camouflage
        for opt in opts:
            key, _, value = opt.partition("=")
            if key not in ("rate", "subtlety", "camouflage"):
                raise ValueError(f"unknown knob {key!r} for {name}; use rate, subtlety or camouflage")
            setattr(k, key, float(value))
        if not 0 <= k.subtlety <= 1 or not 0 <= k.camouflage <= 1 or k.rate < 0:
            raise ValueError(f"{name}: subtlety and camouflage are between 0 and 1, rate is not negative")
        chosen[name] = k
    return chosen


@dataclass(eq=False)
class Incident:
    scenario: str
    id: str
    day: int
    camouflaged: bool
    subtlety: float
    variant: str = ""
    fired: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    pkgs: list[int] = field(default_factory=list)  # the packages that carry the anomaly (see involve)
    locations: list[int] = field(default_factory=list)

    @property
    def start_t(self) -> int:
        return self.day * DAY_MS + 12 * HOUR_MS

    def label(self, role: str, transfer_key: str = "") -> tuple:
        self.fired = True
        return (self.scenario, self.id, role, transfer_key, self.start_t, self.camouflaged, self.subtlety)

    def involve(self, pkgs: Any = (), locations: Any = ()) -> None:
        """Record the packages (and, for volume scenarios, the locations) that carry the anomaly."""
        self.pkgs.extend(pkgs)
        self.locations.extend(locations)

    def scaled(self, blatant: float, subtle: float) -> float:
        """A quantity that moves from its blatant to its subtle value as subtlety grows (camouflage: near subtle)."""
        s = max(self.subtlety, 0.85) if self.camouflaged else self.subtlety
        return blatant + (subtle - blatant) * s


class ScenarioBook:
    def __init__(self, knobs: dict[str, Knobs], seed: int, target_events: int) -> None:
        self.knobs = knobs
        self.rng = random.Random(f"scenarios/{seed}")
        self.target = target_events
        self.incidents: list[Incident] = []
        self.by_day: dict[int, list[Incident]] = {}
        self.recall_divert: dict[int, tuple[Incident, int]] = {}  # lot -> (incident, holder loc or -1)
        self.expiry_armed: list[Incident] = []  # expired-lot incidents waiting for expired stock
        self._region_pharmacies: list[tuple[str, float, float]] | None = None  # of the 80k in the geography

    # ------------------------------------------------------------------ planning

    def plan(self, sim: Simulation) -> None:
        days = sim.cfg.days
        rng = self.rng
        for name, k in self.knobs.items():
            n = max(MIN_INCIDENTS, round(k.rate * self.target / 100_000))
            n_camo = round(n * k.camouflage)
            if 0 < k.camouflage < 1:
                n_camo = min(n - 1, max(1, n_camo))
            camo_flags = [i < n_camo for i in range(n)]
            rng.shuffle(camo_flags)
            lo, hi = SCENARIOS[name].window
            warm = sim.cfg.warmup_days
            span = max(10, days - warm)
            for i in range(n):
                day = min(days - 3, warm + rng.randrange(int(span * lo), max(int(span * lo) + 1, int(span * hi))))
                sub = min(1.0, max(0.0, k.subtlety + rng.uniform(-0.15, 0.15)))
                inc = Incident(name, f"{name}-{i + 1:03d}", day, camo_flags[i], round(sub, 3))
                PREPARE.get(name, _no_prepare)(self, sim, inc, i)
                self.by_day.setdefault(inc.day, []).append(inc)
                self.incidents.append(inc)

    def on_day(self, sim: Simulation, day: int) -> None:
        for inc in self.by_day.pop(day, []):
            START[inc.scenario](self, sim, inc, day)

    def summary(self, labelled: dict[str, int] | None = None, sim: Simulation | None = None) -> list[dict[str, Any]]:
        labelled = labelled or {}
        return [
            {
                "incident": i.id,
                "scenario": i.scenario,
                "start_day": i.day,
                "camouflaged": i.camouflaged,
                "subtlety": i.subtlety,
                "variant": i.variant,
                "labelled_events": labelled.get(i.id, 0),
                **({"involved": involved(sim, i)} if sim is not None else {}),
            }
            for i in self.incidents
        ]

    # hooks called by the engine
    def check_resale(self, sim: Simulation, sh: Shipment) -> None:
        """A holder ships on an incident's packages: label that transfer too.

        Two kinds of holder: a wholesaler holding packages that came in as fraudulent returns or resales
        (watch_ship names it: a genuine package with the same serial elsewhere moves unlabelled), and a
        dispenser sending back packages it was sold by an incident (watch_pid: counterfeits in a recall,
        expiry or saleable return). The goods stay fraudulent wherever they go next.
        """
        owner = {p: sim.watch_ship[p][0] for p in sh.pkgs if sim.watch_ship.get(p, (None, -1))[1] == sh.seller}
        held = [p for p in sh.pkgs if (sh.seller, p) in sim.watch_pid] if sim.watch_pid else []
        for p in held:
            owner.setdefault(p, self.incident(sim.watch_pid.pop((sh.seller, p))[1]))
        if not owner:
            return
        incidents = list(dict.fromkeys(owner.values()))  # goods of two incidents can meet
        sim.number_shipment(sh)
        key = sim.transfer_key(sh)
        role = "sent_back" if held else "resale"
        ships = [inc.label(role, key) for inc in incidents]
        recvs = [inc.label(f"{role}_receive", key) for inc in incidents]
        sh.label_ship = ships[0] if len(ships) == 1 else ships
        sh.label_recv = recvs[0] if len(recvs) == 1 else recvs
        dispenser = sim.locs[sh.buyer].role in DISPENSER_ROLES
        for p, inc in owner.items():
            if dispenser:
                sim.watch_pid[(sh.buyer, p)] = inc.label("dispense")
                sim.watch_ship.pop(p, None)
            else:  # a wholesaler that buys them sells them on: still the same fraudulent packages
                sim.watch_ship[p] = (inc, sh.buyer)

    def incident(self, incident_id: str) -> Incident:
        return next(i for i in self.incidents if i.id == incident_id)

    def divert_recalled(self, sim: Simulation, loc: Any, lot: Lot, pkgs: list[int], day: int) -> bool:
        entry = self.recall_divert.get(lot.idx)
        if entry is None or not pkgs:
            return False
        inc, holder = entry
        if holder >= 0 and holder != loc.idx:
            return False
        del self.recall_divert[lot.idx]
        _reentry_onward(self, sim, inc, loc.idx, pkgs, day, "recalled")
        return True

    def divert_expired(self, sim: Simulation, loc: Any, lot: Lot, pkgs: list[int], day: int) -> bool:
        """An armed incident takes the first expired stock found on or after its day (any product)."""
        if not pkgs or loc.role not in DC_OR_DISPENSER or sim.orgs[loc.org].scenario_actor:
            return False
        inc = next((i for i in self.expiry_armed if i.day <= day + 7), None)
        if inc is None:
            return False
        self.expiry_armed.remove(inc)
        _reentry_onward(self, sim, inc, loc.idx, pkgs, max(day, lot.expiry_day) + self.rng.randint(1, 6), "expired")
        return True

    # ------------------------------------------------------------------ helpers

    def active_dispensers(self, sim: Simulation, day: int, roles: tuple[str, ...] = ("pharmacy",)) -> list[Any]:
        return [
            loc
            for loc in sim.disp_locs
            if loc.role in roles
            and (loc.first_day == 0 or loc.first_day <= day - 7)
            and not sim.orgs[loc.org].scenario_actor
        ]

    def pick_victim(
        self,
        sim: Simulation,
        day: int,
        near: int = -1,
        far: bool = False,
        roles: tuple[str, ...] = ("pharmacy",),
        exclude: tuple[int, ...] = (),
    ) -> Any:
        cands = [loc for loc in self.active_dispensers(sim, day, roles) if loc.idx not in exclude]
        if not cands:
            cands = [loc for loc in sim.disp_locs if loc.idx not in exclude]
        if near >= 0:
            # the nearest few or the farthest quarter, in order of distance (the keys are unique: the index
            # breaks ties), without sorting thousands of dispensers to keep six
            net = sim.net
            if far:
                cands = heapq.nlargest(max(1, len(cands) // 4), cands, key=lambda loc: (net.km(near, loc.idx), loc.idx))
                cands.reverse()
            else:
                n = max(1, min(6, len(cands) // 3))
                cands = heapq.nsmallest(n, cands, key=lambda loc: (net.km(near, loc.idx), loc.idx))
        return self.rng.choice(cands)

    def new_actor(self, sim: Simulation, day: int, near: int = -1, far: bool = False, licensed: bool = True) -> Any:
        """A partner nobody has traded with before, at a real distributor site."""
        net, rng = sim.net, self.rng
        sites = [f for f in net.geo.facilities if f.activity == "distributor"]
        if near >= 0:
            ref = sim.locs[near]
            scored = sorted(
                sites,
                key=lambda f: (
                    haversine_km(
                        net.geo.counties[f.county_fips].lat, net.geo.counties[f.county_fips].lon, ref.lat, ref.lon
                    ),
                    f.county_fips,
                ),
            )
            pool = scored[-len(scored) // 3 :] if far else scored[2:40]
        else:
            pool = sites
        site = rng.choice(pool)
        org = net.add_org(
            "secondary_wholesaler",
            net.names.business("secondary_wholesaler"),
            net.new_prefix(9, rng.choice(["10", "11"])),
            site.state,
            licence_status="active" if licensed else "none",
            authorized=licensed,
            first_day=day,
        )
        org.scenario_actor = True
        org.window_days = 7
        org.lot_level = rng.random() < 0.15
        lat, lon = net.facility_point(site.county_fips)
        loc = net.add_loc(org, "dc", f"{org.name} warehouse", lat, lon, site.county_fips, first_day=day)
        sim._grow_locs()
        return loc

    def established_secondary(self, sim: Simulation, near: int, exclude: tuple[int, ...] = ()) -> Any:
        """A licensed secondary wholesaler with a normal trading history, close to a place."""
        cands = [
            sim.locs[d]
            for o in sim.net.secondaries
            for d in sim.orgs[o].locations
            if sim.orgs[o].first_day == 0 and d not in exclude
        ]
        if not cands:
            cands = [sim.locs[d] for o in sim.net.regionals for d in sim.orgs[o].locations if d not in exclude]
        cands.sort(key=lambda loc: (sim.net.distance(near, loc.idx), loc.idx))
        return cands[0]

    def holders(
        self, sim: Simulation, prods: list[int], roles: tuple[str, ...], exclude: int = -1, min_loose: int = 1
    ) -> list[tuple[int, int]]:
        """(location, product) pairs holding at least min_loose packages (loose or in sealed cases)."""
        out = []
        pset = set(prods)
        cands = [
            loc for loc in sim.locs if loc.role in roles and loc.idx != exclude and not sim.orgs[loc.org].scenario_actor
        ]
        if len(cands) > 400:  # a sample keeps large networks fast; the choice stays random
            cands = sorted(self.rng.sample(cands, 400), key=lambda loc: loc.idx)
        products = sim.products
        for loc in cands:
            stock = sim.stock[loc.idx]
            # the products asked for, in the stock's own order (picked out in C: a DC stocks every product)
            for prod in filter(pset.__contains__, stock):
                s = stock[prod]
                if len(s.loose) + len(s.cases) * products[prod].case_size >= min_loose:
                    out.append((loc.idx, prod))
        return out

    def region_pharmacies(self, sim: Simulation) -> list[tuple[str, float, float]]:
        """The geography's pharmacies in the network's region (the same every time: kept after the first ask)."""
        if self._region_pharmacies is None:
            net = sim.net
            counties = net.geo.counties
            states = set(net.region_states)  # (a set: tens of thousands of lookups)
            self._region_pharmacies = [p for p in net.geo.pharmacies if counties[p[0]].state in states]
        return self._region_pharmacies

    @staticmethod
    def has_stock(sim: Simulation, loc_idx: int, prod: int) -> bool:
        s = sim.stock[loc_idx].get(prod)
        return s is not None and bool(s.loose or s.cases)

    def take(self, sim: Simulation, loc_idx: int, prod: int, n: int, remove: bool = True) -> list[int]:
        """Packages out of a location's stock without any event (off the record)."""
        s = sim.stock[loc_idx].get(prod)
        if s is None:
            return []
        while len(s.loose) < n and s.cases:
            s.loose.extend(sim.case_pkgs.pop(s.cases.pop(0)))
        n = min(n, len(s.loose))
        if not remove:
            return list(s.loose)[:n]
        return [s.loose.pop() for _ in range(n)]

    def phantom_lot(self, sim: Simulation, prod: int, day: int, style_like: bool) -> int:
        rng = self.rng
        if style_like:
            genuine = sim.lots_of.get(prod)
            number = sim.lots[genuine[-1]].number if genuine else str(rng.randrange(100000, 999999))
            number = "".join(str(rng.randrange(10)) if c.isdigit() else c for c in number)
        else:
            number = f"B{rng.randrange(6000, 8999)}{rng.choice('ABCDEFXYZ')}"
        expiry_day = day + rng.randint(300, 700)
        exp = sim.cfg.start + dt.timedelta(days=expiry_day)
        lot = Lot(len(sim.lots), prod, number, expiry_day, exp.isoformat(), day, phantom=True)
        sim.add_lot(lot)
        return lot.idx

    def fakes(self, sim: Simulation, prod: int, n: int, lot_idx: int) -> list[int]:
        return list(sim.new_packages(prod, lot_idx, n, in_lot=False))

    def shipment(
        self,
        sim: Simulation,
        inc: Incident,
        seller: int,
        buyer: int,
        pkgs: list[int],
        *,
        kind: str = "sale",
        disposition: str = "in_transit",
        role: str = "ship",
        recv_role: str | None = "receive",
        watch: list[int] | None = None,
        on_receive: Any = None,
        owner_from: int = -1,
    ) -> Shipment:
        sl, bl = sim.locs[seller], sim.locs[buyer]
        sh = Shipment(
            seller,
            buyer,
            sl.org if owner_from < 0 else owner_from,
            bl.org,
            pkgs=list(pkgs),
            kind=kind,
            disposition=disposition,
        )
        sim.number_shipment(sh)
        key = sim.transfer_key(sh)
        sh.label_ship = inc.label(role, key)
        sh.label_recv = inc.label(recv_role, key) if recv_role else None
        sh.on_receive = on_receive
        if bl.role in DISPENSER_ROLES:
            for p in watch if watch is not None else pkgs:
                sim.watch_pid[(buyer, p)] = inc.label("dispense")
        return sh


def involved(sim: Simulation, inc: Incident) -> dict[str, list[str]]:
    """What carries an incident's anomaly, as identifiers in the events (EPC URN form): the packages (serials),
    their lots (for lot-level events) and, for volume scenarios, the locations."""
    pkgs = list(dict.fromkeys(inc.pkgs))
    lots = [sim.lots[x] for x in sorted({sim.pkg_lot[p] for p in pkgs})]
    products = sim.products
    return {
        "epcs": sorted({sim.epc(p, False) for p in pkgs}),
        "lots": [ids.lgtin(products[lot.prod].gtin, products[lot.prod].prefix_len, lot.number, False) for lot in lots],
        "locations": sorted({sim.locs[x].gln for x in inc.locations}),
    }


def _no_prepare(book: ScenarioBook, sim: Simulation, inc: Incident, i: int) -> None:
    return None


def _hold(sim: Simulation, sh: Shipment, day: int, t: int) -> None:
    """on_receive for goods that stay in the scenario's custody (no stock booking)."""
    return None


def _retail_products(sim: Simulation, valuable: bool) -> list[int]:
    prods = [p.idx for p in sim.products if p.repack_of < 0 and p.hospital_share < 0.5 and not sim.controlled[p.idx]]
    if valuable:
        rich = [p for p in prods if sim.products[p].value_tier >= 1]
        return rich or prods
    prods.sort(key=lambda p: -sim.mix_r[p])
    return prods[: max(3, len(prods) // 2)]


def _mix_genuine(book: ScenarioBook, sim: Simulation, seller: int, prod: int, k: int) -> list[int]:
    return book.take(sim, seller, prod, k) if k > 0 else []


# ---------------------------------------------------------------------- 1 serial cloning


def start_cloning(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    rng = book.rng
    victim = book.pick_victim(sim, day)
    prods = _retail_products(sim, valuable=not inc.camouflaged)
    if inc.camouflaged:
        seller = book.established_secondary(sim, victim.idx)
        inc.variant = "established seller, clones mixed with genuine packs"
    else:
        seller = book.new_actor(sim, day, near=victim.idx, far=inc.subtlety < 0.5)
        inc.variant = "new seller"
    # the genuine packs whose serials are copied are held by someone else: never the seller
    found = [
        h
        for h in book.holders(sim, prods, ("pharmacy", "store", "dc"), exclude=victim.idx, min_loose=2)
        if h[0] != seller.idx
    ]
    if not found:
        return
    found.sort(key=lambda h: (sim.net.km(victim.idx, h[0]), h))
    holder, prod = (
        found[rng.randrange(min(5, len(found)))] if inc.camouflaged else found[-1 - rng.randrange(min(5, len(found)))]
    )
    n = rng.randint(1, 3) if inc.camouflaged else max(2, round(rng.randint(8, 24) * (1 - 0.7 * inc.subtlety)))
    # the clones are packs of their own that carry the serials of genuine packs the holder still has
    originals = sim.copies(book.take(sim, holder, prod, n, remove=False))
    if not originals:
        return
    genuine = _mix_genuine(book, sim, seller.idx, prod, rng.randint(1, 4)) if inc.camouflaged else []
    sh = book.shipment(sim, inc, seller.idx, victim.idx, originals + genuine, watch=originals)
    inc.involve(originals)
    sim.ship(sh, day)


# ---------------------------------------------------------------------- 2 counterfeit injection


def prepare_counterfeit(book: ScenarioBook, sim: Simulation, inc: Incident, i: int) -> None:
    if not inc.camouflaged:
        return
    # The camouflaged counterfeiter opens weeks before: a licensed secondary wholesaler that buys genuine
    # product from a national wholesaler and sells it to a few nearby pharmacies, like the others do.
    opened = max(1, inc.day - book.rng.randint(20, 35))
    anchor = book.rng.choice(book.active_dispensers(sim, 0))
    loc = book.new_actor(sim, opened, near=anchor.idx)
    serving = [d for o in sim.net.nationals for d in sim.net.dcs_of(o) if d in sim.exp and sim.exp[d].sum() > 0]
    loc.primary = sim.net.nearest(loc.idx, serving)
    customers = sorted(book.active_dispensers(sim, 0), key=lambda c: (sim.net.km(loc.idx, c.idx), c.idx))[:4]
    import numpy as np

    exp = np.zeros(len(sim.products))
    for c in customers:
        c.secondary = loc.idx
        exp += c.rate * (sim.mix_h if c.role == "hospital" else sim.mix_r) * 0.12
    exp[[p.idx for p in sim.products if p.repack_of >= 0]] = 0.0
    sim.exp[loc.idx] = exp
    sim.exp[loc.primary] = sim.exp[loc.primary] + exp
    inc.data["actor"] = loc.idx
    inc.data["customers"] = [c.idx for c in customers]


def start_counterfeit(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    rng = book.rng
    prods = _retail_products(sim, valuable=True)
    prod = rng.choice(prods)
    if inc.camouflaged:
        seller = sim.locs[inc.data["actor"]]
        victims = [sim.locs[c] for c in inc.data["customers"][:2]]
        genuine_lots = [x for x in sim.lots_of.get(prod, []) if not sim.lots[x].phantom]
        lot = rng.choice(genuine_lots) if genuine_lots else book.phantom_lot(sim, prod, day, True)
        inc.variant = "licensed partner with weeks of genuine trade, genuine lot number"
    else:
        v0 = book.pick_victim(sim, day)
        victims = [v0] + ([book.pick_victim(sim, day, near=v0.idx, exclude=(v0.idx,))] if rng.random() < 0.5 else [])
        seller = book.new_actor(sim, day, near=v0.idx, far=rng.random() < 0.6, licensed=inc.subtlety > 0.7)
        lot = book.phantom_lot(sim, prod, day, style_like=inc.subtlety > 0.4)
        inc.variant = "unlicensed newcomer" if not sim.orgs[seller.org].authorized else "newly licensed newcomer"
    all_fakes = []
    for v in victims:
        n = rng.randint(1, 4) if inc.camouflaged else max(2, round(rng.randint(6, 20) * (1 - 0.6 * inc.subtlety)))
        fakes = book.fakes(sim, prod, n, lot)
        all_fakes += fakes
        inc.involve(fakes)
        genuine = _mix_genuine(book, sim, seller.idx, prod, rng.randint(1, 3)) if inc.camouflaged else []
        sh = book.shipment(sim, inc, seller.idx, v.idx, fakes + genuine, watch=fakes)
        sim.ship(sh, day)
    if inc.camouflaged:
        # falsified transaction history: a receipt "from" the national wholesaler that never shipped it
        src = sim.locs[seller.primary] if seller.primary >= 0 else sim.locs[sim.net.dcs_of(sim.net.nationals[0])[0]]
        org = sim.orgs[seller.org]
        dl = org.digital_link
        fake = Shipment(src.idx, seller.idx, src.org, seller.org, pkgs=all_fakes)
        fake.desadv = sim.number(src.org, "ASN")
        fake.po = sim.number(seller.org, "PO")
        extra = sim.parties(fake, dl)
        t = sim.t_at(seller, day - 1, 8.0, 11.0)
        sim.emit_object(
            seller,
            t,
            [sim.epc(p, dl) for p in all_fakes],
            "OBSERVE",
            "receiving",
            "in_progress",
            extra=extra,
            label=inc.label("falsified_receipt", sim.transfer_key(fake)),
            late=False,
        )


# ---------------------------------------------------------------------- 3 diversion loop


def start_diversion(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    rng = book.rng
    prods = _retail_products(sim, valuable=True) + [p.idx for p in sim.products if p.value_tier >= 1]
    need = 1 if inc.camouflaged else 3
    found = book.holders(sim, prods, ("pharmacy", "hospital", "store"), min_loose=need + 1)
    found = [h for h in found if sim.locs[h[0]].primary >= 0]
    if not found:
        return
    d_loc, prod = found[rng.randrange(len(found))]
    d = sim.locs[d_loc]
    have = len(sim.stock[d_loc][prod].loose)
    n = min(
        have - 1, rng.randint(1, 3) if inc.camouflaged else max(3, round(rng.randint(6, 18) * (1 - 0.5 * inc.subtlety)))
    )
    pkgs = book.take(sim, d_loc, prod, max(1, n))
    if not pkgs:
        return
    inc.involve(pkgs)
    if inc.camouflaged:
        broker = book.established_secondary(sim, d_loc)
        dcs = [x for o in sim.net.nationals + sim.net.regionals for x in sim.net.dcs_of(o) if x != d.primary]
        end = sim.net.nearest(broker.idx, dcs) if dcs else d.primary
        first = book.shipment(
            sim,
            inc,
            d_loc,
            broker.idx,
            pkgs,
            kind="return",
            disposition="returned",
            role="outbound",
            recv_role="broker_receive",
            on_receive=_hold,
        )
        inc.variant = "framed as a return to an established secondary, resold to another wholesaler"
    else:
        broker = book.new_actor(sim, day, near=d_loc, far=inc.subtlety < 0.4)
        end = d.primary  # back to the wholesaler that sold it: a loop
        if sim.locs[end].role == "chain_dc":
            end = sim.locs[end].primary
        first = book.shipment(
            sim, inc, d_loc, broker.idx, pkgs, role="outbound", recv_role="broker_receive", on_receive=_hold
        )
        inc.variant = "sold to a new broker, back to the original wholesaler"
    sim.ship(first, day, sim.t_at(d, day, 12.0, 18.0))
    lag = rng.randint(2, 6) if inc.camouflaged else rng.randint(1, 4)

    def resell(s: Simulation, dd: int) -> None:
        sh = book.shipment(s, inc, broker.idx, end, pkgs, role="reentry", recv_role="reentry_receive")
        s.ship(sh, dd)

    sim.agenda[first.arrive_day + lag].append(("call", resell))


# ---------------------------------------------------------------------- 4 impossible travel / out-of-order custody


def start_travel(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    rng = book.rng
    victim = book.pick_victim(sim, day)
    prods = _retail_products(sim, valuable=False)
    if inc.camouflaged:
        dcs = [
            x
            for o in sim.net.nationals + sim.net.regionals + sim.net.secondaries
            for x in sim.net.dcs_of(o)
            if x not in (victim.primary, victim.secondary)
        ]
        dcs = [x for x in dcs if any(p in sim.stock[x] for p in prods)]
        if not dcs:
            return
        dcs = [x for x in dcs if any(book.has_stock(sim, x, p) for p in prods)]
        if not dcs:
            return
        dcs.sort(key=lambda x: (abs(sim.net.distance(victim.idx, x) - 600), x))
        seller = sim.locs[dcs[0]]
        prod = next(p for p in prods if book.has_stock(sim, seller.idx, p))
        pkgs = book.take(sim, seller.idx, prod, rng.randint(1, 5))
        inc.variant = "established distributor, receipt stamped hours before the shipment"
    else:
        seller = book.new_actor(sim, day, near=victim.idx, far=True)
        found = book.holders(sim, prods, ("dc",), min_loose=3)
        if not found:
            return
        src, prod = found[rng.randrange(len(found))]
        pkgs = book.take(sim, src, prod, rng.randint(4, 12))
        inc.variant = "distant newcomer"
    if not pkgs:
        return
    sh = book.shipment(sim, inc, seller.idx, victim.idx, pkgs, recv_role="receive")
    inc.involve(pkgs)
    for p in pkgs:
        sim.watch_pid.pop((victim.idx, p), None)  # genuine goods: only the timing is wrong
    km = sim.net.distance(seller.idx, victim.idx)
    t_ship = sim.t_at(seller, day, 8.0, 13.0)
    out_of_order = rng.random() < (0.6 if inc.camouflaged else 0.4)
    if out_of_order:
        hours = inc.scaled(rng.uniform(8, 30), rng.uniform(0.75, 2.5))
        recv_t = t_ship - int(hours * HOUR_MS)
        inc.variant += "; received before shipped"
    else:
        speed = inc.scaled(rng.uniform(2500, 9000), rng.uniform(180, 320))  # km/h; trucks do about 90
        recv_t = t_ship + int(max(0.25, km / speed) * HOUR_MS)
        inc.variant += f"; {round(km)} km at {round(speed)} km/h"
    sh.recv_t = recv_t
    sh.arrive_day = day + 1
    sim.ship(sh, day, t_ship)


# ---------------------------------------------------------------------- 5 quantity inflation


def start_inflation(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    rng = book.rng
    variants = ["receipt", "lot_level"] + (["repack"] if sim.net.repackagers else [])
    inc.variant = variants[int(inc.id[-3:]) % len(variants)]
    if inc.variant == "receipt":
        cands = [v for v in book.active_dispensers(sim, day) if sim.orgs[v.org].miss.get("receiving", 0) < 0.3]
        victim = rng.choice(cands or book.active_dispensers(sim, day))

        def inflate(s: Simulation, sh: Shipment) -> None:
            if not sh.pkgs:
                return
            base = sh.pkgs[0]
            extra = rng.randint(1, 2) if inc.camouflaged else max(2, round(len(sh.pkgs) * inc.scaled(1.0, 0.3)))
            fakes = book.fakes(s, s.pkg_prod[base], extra, s.pkg_lot[base])
            sh.pkgs = sh.pkgs + fakes
            sh.label_recv = inc.label("inflated_receipt", s.transfer_key(sh))
            for p in fakes:
                s.watch_pid[(victim.idx, p)] = inc.label("dispense")
            s.receive_hooks.pop(victim.idx, None)
            inc.involve(fakes)
            sh.force_recv = True  # the fraud is the report itself: this receipt is always sent

        sim.receive_hooks[victim.idx] = inflate
        inc.data["victim"] = victim.idx
    elif inc.variant == "lot_level":
        sellers = [
            x
            for o in sim.net.secondaries + sim.net.regionals
            for x in sim.net.dcs_of(o)
            if sim.orgs[sim.locs[x].org].first_day == 0
        ]
        seller = sim.locs[rng.choice(sellers)] if inc.camouflaged and sellers else book.new_actor(sim, day, near=-1)
        prods = _retail_products(sim, valuable=False)
        pkgs: list[int] = []
        prod = rng.choice(prods)
        if seller.idx in sim.stock and prod in sim.stock[seller.idx]:
            pkgs = book.take(sim, seller.idx, prod, rng.randint(2, 6))
        if not pkgs:
            found = book.holders(sim, prods, ("dc",), min_loose=4)
            if not found:
                return
            src, prod = found[rng.randrange(len(found))]
            pkgs = book.take(sim, src, prod, rng.randint(2, 6))
        victim = book.pick_victim(sim, day, near=seller.idx)
        # only the shipping event claims more than was shipped: the receipt lists what came, unlabelled
        sh = book.shipment(sim, inc, seller.idx, victim.idx, pkgs, role="inflated_shipment", recv_role=None)
        inc.involve(pkgs)
        for p in pkgs:
            sim.watch_pid.pop((victim.idx, p), None)
        sh.lot_level = True
        sh.inflate = rng.randint(1, 2) if inc.camouflaged else max(2, round(len(pkgs) * inc.scaled(3.0, 0.5)))
        sim.ship(sh, day)
    else:
        rep = sim.locs[sim.orgs[rng.choice(sim.net.repackagers)].locations[0]]
        outs = [p for p in sim.products if p.supply_loc == rep.idx and p.repack_of >= 0]
        out = rng.choice(outs)
        n_in = rng.randint(2, 4)
        extra = rng.randint(1, 3) if inc.camouflaged else max(2, round(n_in * out.repack_ratio * inc.scaled(0.6, 0.1)))
        # make sure there is input stock to transform
        s = sim.stock[rep.idx].setdefault(out.repack_of, Stock())
        if len(s.loose) + len(s.cases) < n_in:
            found = book.holders(sim, [out.repack_of], ("dc",), min_loose=n_in)
            if found:
                s.loose.extend(book.take(sim, found[0][0], out.repack_of, n_in))
        made = sim.repackage(rep, out.idx, n_in, day, label=inc.label("inflated_transformation"), extra_outputs=extra)
        inc.involve(made)
        if not made:
            inc.fired = False


# ---------------------------------------------------------------------- 6 reappearing serials


def start_reappearing(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    rng = book.rng
    min_age = 14 if inc.camouflaged else 5
    use_destroyed = not inc.camouflaged and rng.random() < 0.4 and sim.destroyed_pool
    if use_destroyed:
        pool = [(p, d) for p, d in sim.destroyed_pool if d <= day - min_age]
        if not pool:
            use_destroyed = False
    if not use_destroyed:
        entries = [(prod, q) for prod, q in sim.dispensed_pool.items() if sim.products[prod].hospital_share < 0.5]
        candidates = [(pid, loc, d) for _prod, q in entries for pid, loc, d in q if d <= day - min_age]
        if not candidates:
            return
        pid0, origin, _ = candidates[rng.randrange(len(candidates))]
        prod = sim.pkg_prod[pid0]
        same_dispensed = [c[0] for c in candidates if sim.pkg_prod[c[0]] == prod]
        n = rng.randint(1, 3) if inc.camouflaged else max(2, round(rng.randint(5, 15) * (1 - 0.6 * inc.subtlety)))
        picked = list(dict.fromkeys([pid0, *rng.sample(same_dispensed, min(len(same_dispensed), n))]))[:n]
        inc.variant = "dispensed serials refilled and resold"
    else:
        pid0, _ = pool[rng.randrange(len(pool))]
        prod = sim.pkg_prod[pid0]
        same = [p for p, _ in pool if sim.pkg_prod[p] == prod]
        picked = list(dict.fromkeys([pid0, *rng.sample(same, min(len(same), rng.randint(3, 10)))]))
        origin = sim.net.reverse_locs[0]
        inc.variant = "destroyed serials back on the market"
    if inc.camouflaged:
        seller = book.established_secondary(sim, origin)
        victim = book.pick_victim(sim, day, near=origin, exclude=(origin,))
        genuine = _mix_genuine(book, sim, seller.idx, prod, rng.randint(1, 3))
    else:
        seller = book.new_actor(sim, day, near=origin, far=inc.subtlety < 0.5)
        victim = book.pick_victim(sim, day, near=origin, far=True, exclude=(origin,))
        genuine = []
    picked = sim.copies(picked)  # refilled or salvaged packs: physical packs of their own, with the old serials
    inc.involve(picked)
    sh = book.shipment(sim, inc, seller.idx, victim.idx, picked + genuine, watch=picked)
    sim.ship(sh, day)


# ---------------------------------------------------------------------- 7 expired / recalled lots re-entering


def prepare_reentry(book: ScenarioBook, sim: Simulation, inc: Incident, i: int) -> None:
    inc.variant = "recalled" if i % 2 == 0 else "expired"
    if inc.variant == "expired":
        # make sure some lot expires around the incident: a short-dated lot (packaged from old bulk)
        prods = [
            p
            for p in _retail_products(sim, valuable=False)
            if sim.products[p].supply_loc == sim.orgs[sim.products[p].mfr].locations[0]
        ]
        prods = prods or _retail_products(sim, valuable=False)
        prod = prods[(len(prods) // 2 + i) % len(prods)]
        inc.data["prod"] = prod
        made = max(1, inc.day - book.rng.randint(30, 40))

        def short_lot(s: Simulation, d: int) -> None:
            inc.data["lot"] = s.produce_short_dated(prod, d, inc.day, cases=4).idx

        def set_aside(s: Simulation, d: int) -> None:
            # a week or two before expiry the holder puts some of the lot aside instead of selling or returning it
            lot = inc.data.get("lot")
            if lot is None or inc not in book.expiry_armed:
                return
            held = []
            for li, st in enumerate(s.stock):
                x = st.get(prod)
                if x is None or s.orgs[s.locs[li].org].scenario_actor or s.locs[li].role not in DC_OR_DISPENSER:
                    continue
                n = sum(1 for p in x.loose if s.pkg_lot[p] == lot)
                n += sum(len(s.case_pkgs[c]) for c in x.cases if s.pkg_lot[s.case_pkgs[c][0]] == lot)
                if n:
                    held.append((n, li))
            if not held:
                return  # sold through: the armed incident waits for any expired stock instead
            _n, li = max(held)
            x = s.stock[li][prod]
            while x.cases and sum(1 for p in x.loose if s.pkg_lot[p] == lot) < 12:
                x.loose.extend(s.case_pkgs.pop(x.cases.pop(0)))
            mine = [p for p in x.loose if s.pkg_lot[p] == lot][: (4 if inc.camouflaged else 12)]
            x.loose = type(x.loose)(p for p in x.loose if p not in mine)
            book.expiry_armed.remove(inc)
            when = s.lots[lot].expiry_day + book.rng.randint(1, 6)
            s.agenda[max(d + 1, when)].append(
                ("call", lambda s2, d2: _reentry_onward(book, s2, inc, li, mine, d2, "expired"))
            )

        sim.agenda[made].append(("call", short_lot))
        sim.agenda[max(made + 1, inc.day - book.rng.randint(8, 14))].append(("call", set_aside))
        book.expiry_armed.append(inc)


def start_reentry(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    if inc.variant != "recalled":
        return  # armed: the next expiry sweep on or after this day calls back through divert_expired
    rng = book.rng
    roles = ("dc",) if inc.camouflaged else ("dc", "pharmacy")
    prods = [p.idx for p in sim.products if p.repack_of < 0]
    found = book.holders(sim, prods, roles, min_loose=3)
    found = [h for h in found if sim.orgs[sim.locs[h[0]].org].first_day == 0]
    rng.shuffle(found)
    lot_of = sim.pkg_lot
    for holder, prod in found:  # the first holder with a lot that can still be recalled
        s = sim.stock[holder][prod]
        lot_ids = [lot_of[p] for p in s.loose] + [lot_of[sim.case_pkgs[c][0]] for c in s.cases]
        lot_ids = [x for x in lot_ids if not sim.lots[x].short and sim.lots[x].recalled_day < 0]
        if lot_ids:
            lot_idx = max(set(lot_ids), key=lambda x: (lot_ids.count(x), x))
            book.recall_divert[lot_idx] = (inc, holder)
            sim.recall(prod, day, lot_idx)
            return


def _reentry_onward(
    book: ScenarioBook, sim: Simulation, inc: Incident, holder: int, pkgs: list[int], day: int, what: str
) -> None:
    rng = book.rng
    h = sim.locs[holder]
    keep = pkgs if inc.camouflaged and h.role == "dc" else pkgs[: max(1, len(pkgs))]
    if inc.camouflaged:
        n = min(len(keep), rng.randint(1, 4))
        sold, rest = keep[:n], keep[n:]
        inc.involve(sold)
        if rest:
            sim.return_to_rd(h, rest, day, what, tag=RETURN_TAG[what])
        if h.role == "dc":
            customers = [d for d in sim.disp_locs if d.primary == holder and d.first_day <= day]
            victim = rng.choice(customers) if customers else book.pick_victim(sim, day, near=holder)
            inc.variant += ": the holding distributor keeps selling it"
        else:
            victim = book.pick_victim(sim, day, near=holder, exclude=(holder,))
            inc.variant += ": pharmacy-to-pharmacy transfer"

        def go(s: Simulation, d: int) -> None:
            s.ship(book.shipment(s, inc, holder, victim.idx, sold), d)

        sim.agenda[max(sim.day + 1, day)].append(("call", go))
        return
    broker = book.new_actor(sim, day, near=holder, far=rng.random() < 0.5)
    n = min(len(keep), max(3, round(len(keep) * inc.scaled(1.0, 0.3))))
    sold = keep[:n]
    inc.involve(sold)
    if keep[n:]:
        sim.return_to_rd(h, keep[n:], day, what, tag=RETURN_TAG[what])
    inc.variant += ": sold to a broker who sells it on"
    first = book.shipment(
        sim, inc, holder, broker.idx, sold, role="outbound", recv_role="broker_receive", on_receive=_hold
    )

    def go1(s: Simulation, d: int) -> None:
        s.ship(first, d)

        def go2(s2: Simulation, d2: int) -> None:
            victim = book.pick_victim(s2, d2, near=broker.idx)
            s2.ship(book.shipment(s2, inc, broker.idx, victim.idx, sold, role="resale", recv_role="resale_receive"), d2)

        s.agenda[first.arrive_day + rng.randint(1, 6)].append(("call", go2))

    sim.agenda[max(sim.day + 1, day)].append(("call", go1))


# ---------------------------------------------------------------------- 8 theft


def start_theft(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    rng = book.rng
    dcs = [x for o in sim.net.nationals for x in sim.net.dcs_of(o)]

    def steal(s: Simulation, sh: Shipment, d: int) -> bool:
        if len(sh.pkgs) < (2 if inc.camouflaged else 3):
            return False
        sh.desadv = s.number(s.locs[sh.seller].org, "ASN")
        sh.po = s.number(s.locs[sh.buyer].org, "PO")
        sh.label_ship = inc.label("stolen_shipment", s.transfer_key(sh))
        sh.no_receive = True
        s.ship(sh, d)
        s.agenda[sh.arrive_day + 2].append(("cancel", sh.buyer, dict(sh.qty)))
        inc.data["stolen"] = list(sh.pkgs)
        inc.involve(sh.pkgs)
        lag = rng.randint(20, 45) if inc.camouflaged else rng.randint(6, 20)
        surface_day = min(s.cfg.days - 4, d + lag)
        s.agenda[max(d + 3, surface_day)].append(("call", lambda s2, d2: _surface(book, s2, inc, sh, d2)))
        return True

    sim.ship_hooks.append((set(dcs), steal))  # the next suitable shipment from any national DC


def _surface(book: ScenarioBook, sim: Simulation, inc: Incident, stolen: Shipment, day: int) -> None:
    rng = book.rng
    pkgs = inc.data["stolen"]
    origin = stolen.buyer
    if inc.camouflaged:
        broker = book.established_secondary(sim, origin)
        n = min(len(pkgs), rng.randint(2, 6))
        sold = pkgs[:n]
        prod = sim.pkg_prod[sold[0]]
        genuine = _mix_genuine(book, sim, broker.idx, prod, rng.randint(1, 3))
        victim = book.pick_victim(sim, day, near=broker.idx, exclude=(origin,))
        inc.variant = "resold months later by an established secondary, no receipt on record"
        sim.ship(
            book.shipment(
                sim, inc, broker.idx, victim.idx, sold + genuine, role="resale", recv_role="resale_receive", watch=sold
            ),
            day,
        )
        return
    broker = book.new_actor(sim, day, near=origin, far=inc.subtlety < 0.5, licensed=rng.random() < 0.5)
    # a receipt from a front company nobody has heard of
    org = sim.orgs[broker.org]
    dl = org.digital_link
    front = ids.Company(sim.net.new_prefix(9, "13"))
    front_gln = front.gln(0)
    src = [
        {"type": "owning_party", "source": ids.pgln(front_gln, front.prefix, dl)},
        {"type": "location", "source": ids.sgln(front.gln(1), front.prefix, dl)},
    ]
    dst = [{"type": "owning_party", "destination": org.pgln[dl]}, {"type": "location", "destination": broker.sgln[dl]}]
    po = sim.number(broker.org, "PO")
    key = ids.biz_transaction(front.gln(1), sim.number(broker.org, "ASN"))
    extra = {
        "bizTransactionList": [
            {"type": "po", "bizTransaction": ids.biz_transaction(broker.gln, po)},
            {"type": "desadv", "bizTransaction": key},
        ],
        "sourceList": src,
        "destinationList": dst,
    }
    sim.emit_object(
        broker,
        sim.t_at(broker, day, 8.0, 12.0),
        [sim.epc(p, dl) for p in pkgs],
        "OBSERVE",
        "receiving",
        "in_progress",
        extra=extra,
        label=inc.label("fence_receipt", key),
        late=False,
    )
    inc.variant = "surfaces at a newcomer, received from an unknown company"
    half = max(1, len(pkgs) // 2)
    v1 = book.pick_victim(sim, day, near=broker.idx, exclude=(origin,))
    sim.ship(
        book.shipment(sim, inc, broker.idx, v1.idx, pkgs[:half], role="resale", recv_role="resale_receive"), day + 1
    )
    if pkgs[half:]:
        v2 = book.pick_victim(sim, day, near=broker.idx, exclude=(origin, v1.idx))
        sim.agenda[day + rng.randint(2, 5)].append(
            (
                "call",
                lambda s, d: s.ship(
                    book.shipment(s, inc, broker.idx, v2.idx, pkgs[half:], role="resale", recv_role="resale_receive"), d
                ),
            )
        )


# ---------------------------------------------------------------------- 9 relabelled lots


def start_relabel(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    rng = book.rng
    if inc.camouflaged and sim.net.repackagers:
        rep = sim.locs[sim.orgs[rng.choice(sim.net.repackagers)].locations[0]]
        outs = [p for p in sim.products if p.supply_loc == rep.idx and p.repack_of >= 0]
        out = rng.choice(outs)
        n_in = rng.randint(1, 3)
        s = sim.stock[rep.idx].setdefault(out.repack_of, Stock())
        if len(s.loose) + len(s.cases) < n_in:
            found = book.holders(sim, [out.repack_of], ("dc",), min_loose=n_in)
            if found:
                s.loose.extend(book.take(sim, found[0][0], out.repack_of, n_in))
        shift = round(inc.scaled(rng.uniform(200, 400), rng.uniform(30, 90)))
        made = sim.repackage(
            rep,
            out.idx,
            n_in,
            day,
            label=inc.label("relabel_transformation"),
            expiry_shift=shift,
            expiry_over_input=True,
        )
        inc.variant = f"repackager output expiry {shift} days past its input lot's expiry"
        if made:
            inc.involve(made)
            return
        inc.fired = False
    # A broker re-commissions genuine packs it got off the record, with a new lot number and a later expiry.
    found = [(loc, item) for loc, held in sim.expired_hold.items() for item, is_case in held if not is_case]
    prods = _retail_products(sim, valuable=rng.random() < 0.5)
    if found and rng.random() < 0.6:
        src, _ = found[rng.randrange(len(found))]
        n_pkgs = rng.randint(3, 10)
        pkgs = [it for it, c in sim.expired_hold[src] if not c][:n_pkgs]
        sim.expired_hold[src] = [(it, c) for it, c in sim.expired_hold[src] if c or it not in pkgs]
        inc.variant = "expired stock re-commissioned with a fresh lot and expiry"
    else:
        holders = book.holders(sim, prods, ("dc",), min_loose=4)
        if not holders:
            return
        src, prod = holders[rng.randrange(len(holders))]
        pkgs = book.take(sim, src, prod, max(2, round(rng.randint(4, 12) * (1 - 0.5 * inc.subtlety))))
        inc.variant = "diverted stock re-commissioned under a new lot"
    if not pkgs:
        return
    prod = sim.pkg_prod[pkgs[0]]
    pkgs = [p for p in pkgs if sim.pkg_prod[p] == prod]
    broker = book.new_actor(sim, day, near=src, far=rng.random() < 0.5, licensed=rng.random() < 0.6)
    org = sim.orgs[broker.org]
    dl = org.digital_link
    lot = sim.lots[book.phantom_lot(sim, prod, day, style_like=inc.subtlety > 0.5)]
    inc.involve(pkgs)
    t = sim.t_at(broker, day, 8.0, 12.0)
    sim.emit_object(
        broker,
        t,
        [sim.epc(p, dl) for p in pkgs],
        "ADD",
        "commissioning",
        "active",
        ilmd={"cbvmda:lotNumber": lot.number, "cbvmda:itemExpirationDate": lot.expiry},
        label=inc.label("recommission"),
        late=False,
    )
    victim = book.pick_victim(sim, day, near=broker.idx)
    sim.ship(book.shipment(sim, inc, broker.idx, victim.idx, pkgs), day + rng.randint(0, 2))


# ---------------------------------------------------------------------- 10 pill mill


def prepare_pill_mill(book: ScenarioBook, sim: Simulation, inc: Incident, i: int) -> None:
    if inc.camouflaged:
        return
    # a pharmacy that opens during the horizon and starts buying big
    net, rng = sim.net, book.rng
    counties = net.geo.counties
    region = book.region_pharmacies(sim)
    fips, lat, lon = region[rng.randrange(len(region))]
    opened = max(1, inc.day - rng.randint(5, 15))
    org = net.add_org(
        "independent",
        net.names.business("independent"),
        net.new_prefix(9, rng.choice(["10", "11", "12"])),
        counties[fips].state,
        first_day=opened,
    )
    org.scenario_actor = True
    org.window_days = 14
    loc = net.add_loc(org, "pharmacy", org.name, lat, lon, fips, first_day=opened)
    nat = net.nationals[rng.randrange(3)]
    loc.primary = net.nearest(loc.idx, net.dcs_of(nat))
    peers = [d for d in sim.disp_locs if d.role == "pharmacy"]
    loc.rate = sorted(d.rate for d in peers)[len(peers) // 2]
    sim.disp_locs.append(loc)
    sim._grow_locs()
    inc.data["loc"] = loc.idx


def start_pill_mill(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    rng = book.rng
    if "loc" in inc.data:
        p = sim.locs[inc.data["loc"]]
        inc.variant = "new pharmacy"
    else:
        cands = book.active_dispensers(sim, day)
        # established pharmacies in counties that already buy a lot per capita
        counties = sim.net.geo.counties

        def intensity(loc: Any) -> float:
            c = counties[loc.county]
            return c.dosage_units / max(1, c.population)

        cands.sort(key=lambda loc: (-intensity(loc), loc.idx))
        taken = {x.data.get("pill_mill") for x in book.incidents}
        cands = [c for c in cands[: max(3, len(cands) // 4)] if c.idx not in taken] or cands
        p = rng.choice(cands)
        inc.variant = "established pharmacy in a high-volume county"
    inc.data["pill_mill"] = p.idx
    inc.involve(locations=[p.idx])
    factor = inc.scaled(rng.uniform(8, 14), rng.uniform(2.5, 4.0)) if not inc.camouflaged else rng.uniform(2.5, 4.0)
    n_sup = rng.randint(2, 3) if inc.camouflaged else max(3, round(inc.scaled(6, 3)))
    ctrl = [i for i, c in enumerate(sim.ctrl) if c]
    dcs = [
        x
        for o in sim.net.nationals + sim.net.regionals + sim.net.secondaries
        for x in sim.net.dcs_of(o)
        if sim.orgs[sim.locs[x].org].first_day == 0 and x in sim.exp and sim.exp[x][ctrl].sum() > 0
    ]
    dcs.sort(key=lambda x: (sim.net.distance(p.idx, x), x))
    suppliers = [p.primary, *[x for x in dcs if x != p.primary][: n_sup - 1]]
    length = min(sim.cfg.days - day - 2, rng.randint(21, 42))
    sim.demand_boost[p.idx] = (factor, day, day + length)

    def label(role: str, sh: Shipment) -> tuple:
        sim.number_shipment(sh)
        return inc.label(role, sim.transfer_key(sh))

    sim.route_override[p.idx] = (suppliers, label)

    def stop(s: Simulation, d: int) -> None:
        s.route_override.pop(p.idx, None)

    sim.agenda[day + length].append(("call", stop))
    inc.data["factor"] = round(factor, 2)
    inc.data["suppliers"] = len(suppliers)


# ---------------------------------------------------------------------- 11 return fraud


def start_return_fraud(book: ScenarioBook, sim: Simulation, inc: Incident, day: int) -> None:
    rng = book.rng
    cands = [v for v in book.active_dispensers(sim, day) if sim.locs[v.primary].role == "dc"]
    if not cands:
        return
    p = rng.choice(cands)
    w = p.primary
    if inc.camouflaged:
        # serials of packs the wholesaler sold to a different pharmacy
        others = [d.idx for d in sim.disp_locs if d.primary == w and d.idx != p.idx]
        found = book.holders(sim, _retail_products(sim, valuable=False), ("pharmacy", "store"), min_loose=2)
        found = [h for h in found if h[0] in others] or found
        if not found:
            return
        holder, prod = found[rng.randrange(len(found))]
        pkgs = sim.copies(book.take(sim, holder, prod, rng.randint(1, 2), remove=False))
        inc.variant = "returns serials sold to another pharmacy"
    else:
        prod = rng.choice(_retail_products(sim, valuable=True))
        genuine_lots = [x for x in sim.lots_of.get(prod, []) if not sim.lots[x].phantom]
        lot = (
            rng.choice(genuine_lots) if genuine_lots and inc.subtlety > 0.4 else book.phantom_lot(sim, prod, day, False)
        )
        pkgs = book.fakes(sim, prod, max(2, round(rng.randint(3, 10) * (1 - 0.5 * inc.subtlety))), lot)
        inc.variant = "returns never-commissioned serials"
    if not pkgs:
        return
    sh = book.shipment(
        sim, inc, p.idx, w, pkgs, kind="return", disposition="returned", role="return", recv_role="return_receive"
    )
    sh.label_restock = inc.label("restock", sim.transfer_key(sh))
    inc.involve(pkgs)
    for pid in pkgs:
        sim.watch_ship[pid] = (inc, w)
    sim.ship(sh, day, sim.t_at(p, day, 12.0, 18.0))


PREPARE = {
    "counterfeit_injection": prepare_counterfeit,
    "expired_recalled_reentry": prepare_reentry,
    "pill_mill": prepare_pill_mill,
}
START = {
    "serial_cloning": start_cloning,
    "counterfeit_injection": start_counterfeit,
    "diversion_loop": start_diversion,
    "impossible_travel": start_travel,
    "quantity_inflation": start_inflation,
    "reappearing_serial": start_reappearing,
    "expired_recalled_reentry": start_reentry,
    "theft": start_theft,
    "relabelled_lot": start_relabel,
    "pill_mill": start_pill_mill,
    "return_fraud": start_return_fraud,
}
assert set(START) == set(SCENARIOS)
