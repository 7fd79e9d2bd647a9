"""The simulated trading-partner network: organizations, locations, products.

Places and demand come from the real ARCOS geography (geo.py); names are synthetic. Volume is
concentrated the way it is in the US: three national wholesalers (sized by their real ARCOS
facility counts) serve most pharmacies, a handful of regional and secondary wholesalers the rest.
No Django here.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from simulator import ids
from simulator.geo import DIVISIONS, Geography, haversine_km, state_offset
from simulator.names import NameMaker


@dataclass(frozen=True)
class ScaleSpec:
    name: str
    target_events: int
    days: int
    divisions: int  # census divisions covered (0 = the whole country)
    manufacturers: int
    repackagers: int
    regional: int
    secondary: int
    mfr_3pl: int
    reverse: int
    chains: int
    chain_stores: tuple[int, int]
    independents: int
    hospitals: int
    products: int
    dcs_per_national: int


# `products` sets how thinly demand spreads. A dispenser stocks a product only after a first prescription
# for it (which waits for the delivery), so the share of prescriptions that are the first of their pharmacy
# and product decides how often shelves are empty: 6 % at tiny, 11 % at small. The big networks have many
# more, smaller pharmacies, so they keep one product per catalogue entry (42): 13 % at medium. With 110
# products medium sold each product 0.014 times a day per dispenser (small 0.06); 24 % of prescriptions
# were first ones, filling the shelves shipped 3.2 packages to dispensers per dispensing event (small
# 1.85), more than distribution centres stocked for what is dispensed could supply, and 18 % of
# prescriptions were lost (small 7 %).
SCALES: dict[str, ScaleSpec] = {
    "tiny": ScaleSpec("tiny", 10_000, 70, 1, 5, 1, 1, 2, 1, 1, 2, (6, 10), 18, 4, 14, 2),
    "small": ScaleSpec("small", 100_000, 120, 2, 12, 1, 3, 4, 2, 1, 4, (12, 45), 140, 20, 36, 4),
    "medium": ScaleSpec("medium", 1_000_000, 180, 0, 30, 3, 8, 10, 4, 3, 6, (60, 400), 1100, 140, 42, 12),
    "large": ScaleSpec("large", 10_000_000, 365, 0, 70, 6, 18, 24, 8, 5, 8, (300, 2200), 7000, 900, 42, 28),
}

# kind: the provenance Organization.Kind value; role: what the simulator makes it do.
KIND_OF_ROLE = {
    "manufacturer": "manufacturer",
    "repackager": "repackager",
    "national_wholesaler": "wholesaler",
    "regional_wholesaler": "wholesaler",
    "secondary_wholesaler": "wholesaler",
    "3pl": "3pl",
    "reverse_distributor": "3pl",
    "chain": "dispenser",
    "independent": "dispenser",
    "hospital": "hospital",
}
# Document order inside a window: upstream first.
TIER = {
    "manufacturer": 0,
    "3pl": 1,
    "national_wholesaler": 2,
    "regional_wholesaler": 2,
    "secondary_wholesaler": 3,
    "repackager": 3,
    "chain": 4,
    "hospital": 5,
    "independent": 6,
    "reverse_distributor": 7,
}

# (description, schedule, value tier 0 generic / 1 brand / 2 specialty, cold chain, hospital share,
#  seasonal amplitude, seasonal peak day-of-year, units per case, bulk for repackaging)
CATALOG: list[tuple[str, str, int, bool, float, float, int, int, bool]] = [
    ("atorvastatin 20 mg tablet, bottle of 90", "", 0, False, 0.05, 0.0, 0, 48, False),
    ("lisinopril 10 mg tablet, bottle of 100", "", 0, False, 0.05, 0.0, 0, 48, False),
    ("metformin hydrochloride 500 mg tablet, bottle of 500", "", 0, False, 0.15, 0.0, 0, 24, True),
    ("amlodipine 5 mg tablet, bottle of 90", "", 0, False, 0.05, 0.0, 0, 48, False),
    ("oxycodone hydrochloride 10 mg tablet, bottle of 100", "CII", 0, False, 0.15, 0.0, 0, 24, False),
    (
        "hydrocodone bitartrate and acetaminophen 10 mg/325 mg tablet, bottle of 100",
        "CII",
        0,
        False,
        0.1,
        0.0,
        0,
        24,
        False,
    ),
    ("amoxicillin 500 mg capsule, bottle of 100", "", 0, False, 0.1, 0.45, 20, 48, False),
    ("albuterol sulfate 90 mcg inhalation aerosol, 1 inhaler", "", 0, False, 0.1, 0.3, 110, 72, False),
    ("insulin glargine 100 units/mL, 5 pens of 3 mL", "", 1, True, 0.15, 0.0, 0, 20, False),
    ("semaglutide 1 mg/0.74 mL, 1 pen", "", 2, True, 0.05, 0.0, 0, 20, False),
    (
        "bictegravir/emtricitabine/tenofovir alafenamide 50/200/25 mg tablet, bottle of 30",
        "",
        2,
        False,
        0.05,
        0.0,
        0,
        24,
        False,
    ),
    ("bevacizumab 100 mg/4 mL single-dose vial", "", 2, True, 0.95, 0.0, 0, 10, False),
    ("ceftriaxone 1 g powder for injection, 10 vials", "", 0, False, 0.9, 0.2, 15, 10, False),
    ("oseltamivir phosphate 75 mg capsule, 10 capsules", "", 0, False, 0.15, 1.2, 25, 48, False),
    ("levothyroxine sodium 50 mcg tablet, bottle of 90", "", 0, False, 0.05, 0.0, 0, 48, False),
    ("gabapentin 300 mg capsule, bottle of 500", "", 0, False, 0.2, 0.0, 0, 24, True),
    ("apixaban 5 mg tablet, bottle of 60", "", 1, False, 0.1, 0.0, 0, 48, False),
    ("adalimumab 40 mg/0.4 mL, 2 pens", "", 2, True, 0.05, 0.0, 0, 12, False),
    ("methylphenidate hydrochloride ER 36 mg tablet, bottle of 100", "CII", 0, False, 0.02, 0.25, 240, 24, False),
    ("enoxaparin sodium 40 mg/0.4 mL, 10 prefilled syringes", "", 0, False, 0.85, 0.0, 0, 10, False),
    ("sertraline 50 mg tablet, bottle of 100", "", 0, False, 0.05, 0.0, 0, 48, False),
    ("omeprazole 20 mg delayed-release capsule, bottle of 100", "", 0, False, 0.05, 0.0, 0, 48, False),
    ("alprazolam 1 mg tablet, bottle of 100", "CIV", 0, False, 0.05, 0.0, 0, 48, False),
    ("heparin sodium 5,000 units/mL, 25 vials of 1 mL", "", 0, False, 0.95, 0.0, 0, 10, False),
    (
        "emtricitabine/tenofovir disoproxil fumarate 200/300 mg tablet, bottle of 30",
        "",
        2,
        False,
        0.05,
        0.0,
        0,
        24,
        False,
    ),
    ("morphine sulfate ER 30 mg tablet, bottle of 100", "CII", 0, False, 0.3, 0.0, 0, 24, False),
    ("buprenorphine and naloxone 8 mg/2 mg sublingual film, 30 films", "CIII", 0, False, 0.05, 0.0, 0, 24, False),
    ("amphetamine mixed salts 20 mg tablet, bottle of 100", "CII", 0, False, 0.02, 0.25, 240, 24, False),
    ("azithromycin 250 mg tablet, 6 tablets", "", 0, False, 0.1, 0.5, 20, 72, False),
    ("epinephrine 0.3 mg auto-injector, 2 pack", "", 1, False, 0.05, 0.6, 225, 36, False),
    ("fluticasone propionate 50 mcg nasal spray, 16 g", "", 0, False, 0.02, 0.4, 115, 72, False),
    ("naloxone hydrochloride 4 mg nasal spray, 2 pack", "", 0, False, 0.1, 0.0, 0, 36, False),
    ("pembrolizumab 100 mg/4 mL single-dose vial", "", 2, True, 0.98, 0.0, 0, 10, False),
    ("vancomycin 1 g powder for injection, 10 vials", "", 0, False, 0.95, 0.0, 0, 10, False),
    ("filgrastim 480 mcg/0.8 mL prefilled syringe, 1 syringe", "", 2, True, 0.8, 0.0, 0, 10, False),
    ("propofol 10 mg/mL emulsion, 10 vials of 20 mL", "", 0, False, 0.98, 0.0, 0, 10, False),
    ("ondansetron 4 mg orally disintegrating tablet, 30 tablets", "", 0, False, 0.4, 0.0, 0, 48, True),
    ("losartan potassium 50 mg tablet, bottle of 90", "", 0, False, 0.05, 0.0, 0, 48, False),
    ("montelukast sodium 10 mg tablet, bottle of 90", "", 0, False, 0.03, 0.2, 110, 48, False),
    ("escitalopram 10 mg tablet, bottle of 90", "", 0, False, 0.05, 0.0, 0, 48, False),
    ("clopidogrel 75 mg tablet, bottle of 90", "", 0, False, 0.08, 0.0, 0, 48, False),
    ("prednisone 10 mg tablet, bottle of 100", "", 0, False, 0.1, 0.1, 110, 48, False),
]
STRENGTH_VARIANTS = ["", " (alternate strength)", " (institutional pack)"]


@dataclass(eq=False)
class Org:
    idx: int
    name: str
    role: str
    prefix: str
    gln: str
    licence_number: str
    licence_state: str
    licence_status: str
    authorized: bool
    digital_link: bool
    first_day: int = 0
    labeler: str = ""
    locations: list[int] = field(default_factory=list)
    pgln: tuple[str, str] = ("", "")  # (URN, Digital Link)
    # data-quality behaviour (benign noise)
    skew_ms: int = 0
    miss: dict[str, float] = field(default_factory=dict)
    late: float = 0.0
    window_days: int = 1
    lot_level: bool = False  # reports shipments to dispensers at lot level (quantityList)
    lot_style: int = 0
    numeric_serials: bool = True
    salt: int = 0
    wholesaler: int = -1  # chains: their national wholesaler (org idx)
    has_dc: bool = False
    scenario_actor: bool = False  # created by a scenario; never written to any output

    @property
    def kind(self) -> str:
        return KIND_OF_ROLE[self.role]

    @property
    def tier(self) -> int:
        return TIER[self.role]


@dataclass(eq=False)
class Loc:
    idx: int
    org: int
    name: str
    role: str  # plant, 3pl, dc, chain_dc, store, pharmacy, hospital, returns, repack
    gln: str
    prefix: str
    lat: float
    lon: float
    county: str
    state: str
    std_off: int
    dst: bool
    sgln: tuple[str, str] = ("", "")
    rate: float = 0.0  # dispensing demand, packages per day
    primary: int = -1  # supplier location for most orders
    secondary: int = -1
    controlled_supplier: int = -1  # chains with a DC buy CII from a wholesaler directly
    order_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # weekdays on which it orders (deliveries follow)
    first_day: int = 0


@dataclass(eq=False)
class Product:
    idx: int
    name: str
    ndc: str
    gtin: str
    mfr: int  # org idx
    prefix_len: int
    schedule: str
    value_tier: int
    cold: bool
    hospital_share: float
    season_amp: float
    season_peak: int
    case_size: int
    shelf_life_days: int
    popularity: float
    supply_loc: int = -1  # where wholesalers order it (plant or 3PL)
    bulk: bool = False
    repack_of: int = -1  # for repackaged unit-dose products: the bulk input product
    repack_ratio: int = 0
    sgtin: tuple[str, str] = ("", "")
    numeric_serials: bool = True
    salt: int = 0


@dataclass(eq=False)
class Network:
    spec: ScaleSpec
    orgs: list[Org]
    locs: list[Loc]
    products: list[Product]
    region_states: tuple[str, ...]
    nationals: list[int]
    regionals: list[int]
    secondaries: list[int]
    reverse_locs: list[int]
    repackagers: list[int]
    names: NameMaker
    rng: random.Random
    used_prefixes: set[str]
    geo: Geography
    _dist: dict[tuple[int, int], float] = field(default_factory=dict)

    def dispensers(self) -> list[Loc]:
        return [loc for loc in self.locs if loc.role in ("store", "pharmacy", "hospital")]

    def dcs_of(self, org_idx: int) -> list[int]:
        return [i for i in self.orgs[org_idx].locations if self.locs[i].role in ("dc", "chain_dc", "3pl", "repack")]

    def distance(self, a: int, b: int) -> float:
        key = (a, b) if a < b else (b, a)
        d = self._dist.get(key)
        if d is None:
            d = self._dist[key] = self.km(a, b)
        return d

    def km(self, a: int, b: int) -> float:
        """The distance in km, not kept (`distance` keeps it): for one-off scans over many places (a scenario
        looking for a victim among thousands of dispensers), which would otherwise fill the cache with pairs
        never asked for again (haversine_km is symmetric to the bit, so either order gives the kept value)."""
        la, lb = self.locs[a], self.locs[b]
        return haversine_km(la.lat, la.lon, lb.lat, lb.lon)

    def nearest(self, loc_idx: int, candidates: list[int]) -> int:
        return min(candidates, key=lambda c: (self.distance(loc_idx, c), c))

    # --- creation helpers, also used by scenarios for the partners they introduce ---

    def new_prefix(self, length: int, lead: str) -> str:
        rng = self.rng
        while True:
            p = lead + "".join(str(rng.randrange(10)) for _ in range(length - len(lead)))
            if p not in self.used_prefixes:
                self.used_prefixes.add(p)
                return p

    def add_org(
        self,
        role: str,
        name: str,
        prefix: str,
        state: str,
        *,
        digital_link: bool | None = None,
        labeler: str = "",
        licence_status: str = "active",
        authorized: bool = True,
        first_day: int = 0,
    ) -> Org:
        rng = self.rng
        company = ids.Company(prefix)
        gln = company.gln(0)
        kind = KIND_OF_ROLE[role]
        code = {
            "manufacturer": "REG",
            "repackager": "REG",
            "wholesaler": "WDD",
            "3pl": "3PL",
            "dispenser": "PHY",
            "hospital": "HSP",
        }[kind]
        licence = f"{state}-{code}-{rng.randrange(10**6, 10**7)}" if licence_status != "none" else ""
        if digital_link is None:
            digital_link = rng.random() < 0.2
        org = Org(
            idx=len(self.orgs),
            name=name,
            role=role,
            prefix=prefix,
            gln=gln,
            licence_number=licence,
            licence_state=state if licence else "",
            licence_status=licence_status,
            authorized=authorized,
            digital_link=digital_link,
            first_day=first_day,
            labeler=labeler,
            pgln=(ids.pgln(gln, prefix, False), ids.pgln(gln, prefix, True)),
            lot_style=rng.randrange(4),
            numeric_serials=rng.random() < 0.75,
            salt=rng.randrange(10**9),
        )
        self.orgs.append(org)
        return org

    def add_loc(self, org: Org, role: str, name: str, lat: float, lon: float, county: str, first_day: int = 0) -> Loc:
        company = ids.Company(org.prefix)
        gln = company.gln(len(org.locations) + 1)
        state = self.geo.counties[county].state
        loc = Loc(
            idx=len(self.locs),
            org=org.idx,
            name=name,
            role=role,
            gln=gln,
            prefix=org.prefix,
            lat=lat,
            lon=lon,
            county=county,
            state=state,
            std_off=state_offset(state, lon),
            dst=state not in ("AZ", "HI"),
            sgln=(ids.sgln(gln, org.prefix, False), ids.sgln(gln, org.prefix, True)),
            first_day=first_day,
        )
        self.locs.append(loc)
        org.locations.append(loc.idx)
        return loc

    def facility_point(self, fips: str) -> tuple[float, float]:
        c = self.geo.counties[fips]
        return round(c.lat + self.rng.uniform(-0.04, 0.04), 4), round(c.lon + self.rng.uniform(-0.04, 0.04), 4)


def _weighted_sample(rng: random.Random, items: list[int], weights: list[float], k: int) -> list[int]:
    """k distinct items, probability proportional to weight (Efraimidis-Spirakis keys)."""
    gen = np.random.default_rng(rng.getrandbits(64))
    w = np.asarray(weights, dtype=float)
    keys = np.where(w > 0, gen.random(len(items)) ** (1.0 / np.maximum(w, 1e-300)), 0.0)
    order = np.lexsort((np.asarray(items), -keys))[:k]
    return [items[i] for i in order.tolist()]


def build_network(seed: int, spec: ScaleSpec, geo: Geography) -> Network:
    rng = random.Random(f"network/{seed}")
    names = NameMaker(random.Random(f"names/{seed}"))
    if spec.divisions:
        division_names = sorted(DIVISIONS)
        chosen = rng.sample(division_names, spec.divisions)
        states = tuple(sorted(s for d in chosen for s in DIVISIONS[d]))
    else:
        states = tuple(sorted({c.state for c in geo.counties.values()} - {"PR", "VI", "GU"}))
    region = set(states)
    net = Network(spec, [], [], [], states, [], [], [], [], [], names, rng, set(), geo)
    counties = geo.counties
    region_pharm = [i for i, p in enumerate(geo.pharmacies) if counties[p[0]].state in region]
    cx = sum(geo.pharmacies[i][1] for i in region_pharm) / len(region_pharm)
    cy = sum(geo.pharmacies[i][2] for i in region_pharm) / len(region_pharm)

    def region_state() -> str:
        return rng.choice(states)

    # --- manufacturers: real manufacturer sites anywhere in the US ---
    mfr_sites = [f for f in geo.facilities if f.activity == "manufacturer"]
    labelers: set[str] = set()
    mfr_orgs: list[Org] = []
    for _ in range(spec.manufacturers):
        site = rng.choice(mfr_sites)
        while True:
            labeler = f"{rng.randrange(50000, 99999):05d}"
            if labeler not in labelers:
                labelers.add(labeler)
                break
        prefix = "03" + labeler
        net.used_prefixes.add(prefix)
        org = net.add_org("manufacturer", names.business("manufacturer"), prefix, site.state, labeler=labeler)
        lat, lon = net.facility_point(site.county_fips)
        net.add_loc(org, "plant", f"{org.name} plant", lat, lon, site.county_fips)
        mfr_orgs.append(org)

    # --- 3PLs for some manufacturers, reverse distributors ---
    dist_sites = [f for f in geo.facilities if f.activity == "distributor"]
    tpl_locs: list[int] = []
    for _ in range(spec.mfr_3pl):
        site = rng.choice(dist_sites)
        org = net.add_org("3pl", names.business("3pl"), net.new_prefix(7, rng.choice(["06", "07"])), site.state)
        lat, lon = net.facility_point(site.county_fips)
        tpl_locs.append(net.add_loc(org, "3pl", f"{org.name} distribution center", lat, lon, site.county_fips).idx)
    rev_sites = [f for f in geo.facilities if f.activity == "reverse_distributor"]
    for _ in range(spec.reverse):
        site = rng.choice(rev_sites)
        org = net.add_org(
            "reverse_distributor",
            names.business("reverse_distributor"),
            net.new_prefix(7, rng.choice(["06", "07"])),
            site.state,
        )
        lat, lon = net.facility_point(site.county_fips)
        net.reverse_locs.append(
            net.add_loc(org, "returns", f"{org.name} returns center", lat, lon, site.county_fips).idx
        )

    # --- wholesalers: the three national families keep their real DC counts' proportions ---
    def family_sites(rank: int) -> list[str]:
        return sorted({f.county_fips for f in dist_sites if f.family_rank == rank})

    national_sizes = []
    for rank in (1, 2, 3):
        sites = family_sites(rank)
        national_sizes.append(len(sites))
        org = net.add_org(
            "national_wholesaler",
            names.business("national_wholesaler"),
            net.new_prefix(7, rng.choice(["08", "09"])),
            rng.choice(sorted({counties[s].state for s in sites})),
        )
        in_region = [s for s in sites if counties[s].state in region]
        if not in_region:
            in_region = sorted(sites, key=lambda s: haversine_km(counties[s].lat, counties[s].lon, cx, cy))[:1]
        # DCs spread over the region (farthest-point choice), as a national wholesaler places them
        chosen = [rng.choice(sorted(in_region))]
        while len(chosen) < min(spec.dcs_per_national, len(in_region)):
            chosen.append(
                max(
                    (s for s in sorted(in_region) if s not in chosen),
                    key=lambda s: min(
                        haversine_km(counties[s].lat, counties[s].lon, counties[c].lat, counties[c].lon) for c in chosen
                    ),
                )
            )
        for fips in sorted(chosen):
            lat, lon = net.facility_point(fips)
            net.add_loc(org, "dc", f"{org.name} DC {len(org.locations) + 1}", lat, lon, fips)
        net.nationals.append(org.idx)
    other_families = sorted({f.family_rank for f in dist_sites if f.family_rank > 3})
    regional_candidates = [r for r in other_families if any(counties[s].state in region for s in family_sites(r))]
    multi = [r for r in regional_candidates if len(family_sites(r)) > 1]
    single = [r for r in regional_candidates if len(family_sites(r)) == 1]
    for i, rank in enumerate((multi + single)[: spec.regional]):
        sites = [s for s in family_sites(rank) if counties[s].state in region][:2]
        org = net.add_org(
            "regional_wholesaler",
            names.business("regional_wholesaler"),
            net.new_prefix(7, rng.choice(["08", "09"])),
            counties[sites[0]].state,
        )
        org.lot_level = i % 3 == 1  # some report shipments at lot level only
        for fips in sites:
            lat, lon = net.facility_point(fips)
            net.add_loc(org, "dc", f"{org.name} DC {len(org.locations) + 1}", lat, lon, fips)
        net.regionals.append(org.idx)
    rest = [r for r in single if r not in (multi + single)[: spec.regional]]
    rng.shuffle(rest)
    # Secondary wholesalers: mostly local, but some sell nationwide from far away (legitimately).
    distant = [r for r in other_families if len(family_sites(r)) == 1 and r not in regional_candidates]
    rng.shuffle(distant)
    n_far = spec.secondary // 3 if spec.divisions else 0
    for rank in rest[: spec.secondary - n_far] + distant[:n_far]:
        fips = family_sites(rank)[0]
        org = net.add_org(
            "secondary_wholesaler",
            names.business("secondary_wholesaler"),
            net.new_prefix(9, rng.choice(["10", "11"])),
            counties[fips].state,
        )
        org.lot_level = rng.random() < 0.5
        org.window_days = 7
        lat, lon = net.facility_point(fips)
        net.add_loc(org, "dc", f"{org.name} warehouse", lat, lon, fips)
        net.secondaries.append(org.idx)

    # --- repackagers (in the region) ---
    region_sites = [f for f in dist_sites if f.state in region] or dist_sites
    for _ in range(spec.repackagers):
        site = rng.choice(region_sites)
        while True:
            labeler = f"{rng.randrange(50000, 99999):05d}"
            if labeler not in labelers:
                labelers.add(labeler)
                break
        prefix = "03" + labeler
        net.used_prefixes.add(prefix)
        org = net.add_org("repackager", names.business("repackager"), prefix, site.state, labeler=labeler)
        lat, lon = net.facility_point(site.county_fips)
        net.add_loc(org, "repack", f"{org.name} facility", lat, lon, site.county_fips)
        net.repackagers.append(org.idx)

    # --- dispensers at real pharmacy positions ---
    n_chain_stores = [rng.randint(*spec.chain_stores) for _ in range(spec.chains)]
    need = sum(n_chain_stores) + spec.independents + spec.hospitals
    if need > len(region_pharm):
        raise ValueError(f"region has {len(region_pharm)} pharmacies, {need} needed")
    taken: set[int] = set()
    national_share = [n / sum(national_sizes) for n in national_sizes]

    def pick_wholesaler() -> int:
        return net.nationals[_choice_weighted(rng, national_share)]

    for c in range(spec.chains):
        org = net.add_org("chain", names.business("chain"), net.new_prefix(7, rng.choice(["06", "07"])), region_state())
        org.has_dc = c % 2 == 0
        org.wholesaler = pick_wholesaler()
        org.window_days = 1
        home = geo.pharmacies[rng.choice(region_pharm)]
        radius = 10_000.0 if c < 2 or not spec.divisions else 250.0
        cand = [i for i in region_pharm if i not in taken]
        km = _haversine_np(
            np.array([geo.pharmacies[i][1] for i in cand]),
            np.array([geo.pharmacies[i][2] for i in cand]),
            home[1],
            home[2],
        )
        weights = (1.0 / (1.0 + (km / radius) ** 2)).tolist()
        stores = sorted(_weighted_sample(rng, cand, weights, n_chain_stores[c]))
        taken.update(stores)
        for n, i in enumerate(stores, start=1):
            fips, lat, lon = geo.pharmacies[i]
            net.add_loc(org, "store", f"{org.name} #{1000 + n * 7 + rng.randrange(7)}", lat, lon, fips)
        if org.has_dc:
            site = min(
                region_sites,
                key=lambda f: haversine_km(counties[f.county_fips].lat, counties[f.county_fips].lon, home[1], home[2]),
            )
            lat, lon = net.facility_point(site.county_fips)
            net.add_loc(org, "chain_dc", f"{org.name} distribution center", lat, lon, site.county_fips)
    # Small partners upload every two weeks (four in the big networks): fewer, fuller documents.
    small_window = {"tiny": 14, "small": 14, "medium": 28, "large": 28}.get(spec.name, 14)
    cand = [i for i in region_pharm if i not in taken]
    rural = [1.0 / math.sqrt(max(1, counties[geo.pharmacies[i][0]].pharmacies)) for i in cand]
    indeps = sorted(_weighted_sample(rng, cand, rural, spec.independents))
    taken.update(indeps)
    late_start = set(rng.sample(range(len(indeps)), max(1, len(indeps) // 25)))  # legit new pharmacies
    for n, i in enumerate(indeps):
        fips, lat, lon = geo.pharmacies[i]
        first_day = rng.randrange(spec.days // 4, spec.days * 3 // 4) if n in late_start else 0
        lapsed = rng.random() < 0.02  # an administrative licence lapse: benign look-alike of "unlicensed"
        org = net.add_org(
            "independent",
            names.business("independent"),
            net.new_prefix(9, rng.choice(["10", "11", "12"])),
            counties[fips].state,
            licence_status="expired" if lapsed else "active",
            first_day=first_day,
        )
        org.window_days = small_window
        net.add_loc(org, "pharmacy", org.name, lat, lon, fips, first_day=first_day)
    cand = [i for i in region_pharm if i not in taken]
    pops = [float(counties[geo.pharmacies[i][0]].population) for i in cand]
    for i in sorted(_weighted_sample(rng, cand, pops, spec.hospitals)):
        fips, lat, lon = geo.pharmacies[i]
        org = net.add_org(
            "hospital", names.business("hospital"), net.new_prefix(9, rng.choice(["12", "13"])), counties[fips].state
        )
        org.window_days = 7
        net.add_loc(org, "hospital", f"{org.name} pharmacy", lat, lon, fips)

    _assign_suppliers(net, rng, national_share)
    _assign_demand(net, rng)
    _build_products(net, rng, mfr_orgs, tpl_locs)
    _assign_behaviour(net, rng)
    return net


def _haversine_np(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    p1, p2 = np.radians(lat), math.radians(lat0)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * math.cos(p2) * np.sin(np.radians(lon0 - lon) / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def _choice_weighted(rng: random.Random, weights: list[float]) -> int:
    x = rng.random() * sum(weights)
    for i, w in enumerate(weights):
        x -= w
        if x < 0:
            return i
    return len(weights) - 1


def _assign_suppliers(net: Network, rng: random.Random, national_share: list[float]) -> None:
    national_dcs = {o: net.dcs_of(o) for o in net.nationals}
    regional_dcs = [d for o in net.regionals for d in net.dcs_of(o)]
    secondary_dcs = [d for o in net.secondaries for d in net.dcs_of(o)]
    for org in net.orgs:
        if org.role == "chain":
            chain_dc = [i for i in org.locations if net.locs[i].role == "chain_dc"]
            for li in org.locations:
                loc = net.locs[li]
                near_w = net.nearest(li, national_dcs[org.wholesaler])
                if loc.role == "chain_dc":
                    loc.primary = near_w
                elif chain_dc:
                    loc.primary = chain_dc[0]
                    loc.controlled_supplier = near_w
                else:
                    loc.primary = near_w
        elif org.role in ("independent", "hospital"):
            loc = net.locs[org.locations[0]]
            share = national_share + ([0.12] if regional_dcs else [])
            pick = _choice_weighted(rng, share)
            if pick < 3:
                loc.primary = net.nearest(loc.idx, national_dcs[net.nationals[pick]])
            else:
                loc.primary = net.nearest(loc.idx, regional_dcs)
            if org.role == "independent" and rng.random() < 0.35:
                pool = (
                    secondary_dcs + regional_dcs
                    if rng.random() < 0.6
                    else [d for o in net.nationals for d in national_dcs[o]]
                )
                pool = [d for d in pool if d != loc.primary]
                if pool:
                    near = sorted(pool, key=lambda d: (net.distance(loc.idx, d), d))[:3]
                    loc.secondary = rng.choice(near)
        elif org.role in ("secondary_wholesaler", "repackager"):
            loc = net.locs[org.locations[0]]
            nat = net.nationals[_choice_weighted(rng, national_share)]
            loc.primary = net.nearest(loc.idx, national_dcs[nat])


# Weekdays on which a dispenser orders the simulated products (a small slice of its catalogue, so it
# does not need them every day): deliveries follow the next day.
ORDER_PATTERNS = {
    "store": [(0, 3), (1, 4), (2,), (1,)],
    "pharmacy": [(0, 3), (1, 3), (2,), (0, 2, 4), (1,), (4,)],
    "hospital": [(0, 2, 4), (1, 3), (0, 3)],
}


def _assign_demand(net: Network, rng: random.Random) -> None:
    counties = net.geo.counties
    factor = {"store": 1.3, "pharmacy": 0.8, "hospital": 2.2}
    for loc in net.dispensers():
        loc.order_days = rng.choice(ORDER_PATTERNS[loc.role])
        c = counties[loc.county]
        intensity = (c.dosage_units / max(1, c.pharmacies)) ** 0.5 if c.dosage_units else 400.0
        loc.rate = factor[loc.role] * intensity * math.exp(rng.gauss(0, 0.45))


def _build_products(net: Network, rng: random.Random, mfrs: list[Org], tpl_locs: list[int]) -> None:
    spec = net.spec
    catalog = list(CATALOG)
    order = list(range(len(catalog)))
    rng.shuffle(order)
    # The first products of the shuffled catalogue always include the scenario-relevant kinds.
    must = [i for i, c in enumerate(catalog) if c[1] == "CII"][:2] + [i for i, c in enumerate(catalog) if c[2] == 2][:2]
    must += [i for i, c in enumerate(catalog) if c[8]][:1] + [i for i, c in enumerate(catalog) if c[4] > 0.8][:1]
    order = must + [i for i in order if i not in must]
    prod_codes: dict[str, int] = {}
    mfr_3pl = {m.idx: tpl_locs[i % len(tpl_locs)] for i, m in enumerate(mfrs) if tpl_locs and i % 3 == 1}
    n = 0
    round_ = 0
    while n < spec.products:
        for ci in order:
            if n >= spec.products:
                break
            desc, schedule, tier, cold, hosp, amp, peak, case, bulk = catalog[ci]
            mfr = mfrs[(ci * 7 + round_ * 3 + rng.randrange(2)) % len(mfrs)]
            code = prod_codes.get(mfr.labeler, rng.randrange(100, 400))
            prod_codes[mfr.labeler] = code + rng.randrange(1, 9)
            ndc = f"{mfr.labeler}-{code:03d}-{rng.randrange(1, 99):02d}"
            gtin = ids.gtin_from_ndc(ndc)
            name = desc + STRENGTH_VARIANTS[round_ % len(STRENGTH_VARIANTS)] if round_ else desc
            shelf = rng.choice([540, 730, 730, 1095]) if not cold else rng.choice([270, 365, 540])
            pop = (1.0 / (1 + n) ** 0.8) * (0.5 if tier == 2 else 1.0) * (0.6 if schedule else 1.0)
            p = Product(
                idx=len(net.products),
                name=name,
                ndc=ndc,
                gtin=gtin,
                mfr=mfr.idx,
                prefix_len=len(mfr.prefix),
                schedule=schedule,
                value_tier=tier,
                cold=cold,
                hospital_share=hosp,
                season_amp=amp,
                season_peak=peak,
                case_size=case,
                shelf_life_days=shelf,
                popularity=pop,
                bulk=bulk,
                sgtin=(ids.sgtin_prefix(gtin, len(mfr.prefix), False), ids.sgtin_prefix(gtin, len(mfr.prefix), True)),
                numeric_serials=mfr.numeric_serials,
                salt=mfr.salt,
            )
            p.supply_loc = mfr_3pl.get(mfr.idx, mfr.locations[0])
            net.products.append(p)
            n += 1
        round_ += 1
    # unit-dose versions made by repackagers from bulk bottles
    for r_idx in net.repackagers:
        rep = net.orgs[r_idx]
        for bulk_product in [p for p in list(net.products) if p.bulk][:3]:
            code = rng.randrange(100, 900)
            ndc = f"{rep.labeler}-{code:03d}-{rng.randrange(1, 99):02d}"
            gtin = ids.gtin_from_ndc(ndc)
            base = bulk_product.name.split(",")[0]
            p = Product(
                idx=len(net.products),
                name=f"{base}, unit dose blister card of 100",
                ndc=ndc,
                gtin=gtin,
                mfr=r_idx,
                prefix_len=len(rep.prefix),
                schedule=bulk_product.schedule,
                value_tier=bulk_product.value_tier,
                cold=bulk_product.cold,
                hospital_share=1.0,
                season_amp=0.0,
                season_peak=0,
                case_size=20,
                shelf_life_days=365,
                popularity=bulk_product.popularity * 0.8,
                repack_of=bulk_product.idx,
                repack_ratio=5,
                sgtin=(ids.sgtin_prefix(gtin, len(rep.prefix), False), ids.sgtin_prefix(gtin, len(rep.prefix), True)),
                numeric_serials=rep.numeric_serials,
                salt=rep.salt,
            )
            p.supply_loc = rep.locations[0]
            net.products.append(p)


def _assign_behaviour(net: Network, rng: random.Random) -> None:
    """Benign data-quality traits: partial reporting, late uploads, clock skew (DSCSA reality 2024-25)."""
    for org in net.orgs:
        if org.role in ("reverse_distributor", "repackager"):
            org.window_days = 7
        r = rng.random()
        if r < 0.08:
            org.skew_ms = rng.choice([-1, 1]) * rng.randrange(30 * 60_000, 150 * 60_000)
        elif r < 0.25:
            org.skew_ms = rng.choice([-1, 1]) * rng.randrange(20_000, 15 * 60_000)
        org.late = rng.choice([0.0, 0.0, 0.01, 0.03])
        if org.role == "manufacturer":
            org.miss = {"packing": 0.3 if rng.random() < 0.2 else 0.0}
            if rng.random() < 0.2:
                org.late = 0.35  # serialization data uploaded in late batches
        elif org.role in ("national_wholesaler", "regional_wholesaler", "secondary_wholesaler"):
            org.miss = {"shipping_to_dispenser": rng.uniform(0.03, 0.35), "unpacking": rng.uniform(0.0, 0.2)}
        elif org.role in ("independent", "hospital", "chain"):
            profile = rng.random()
            if profile < 0.25:  # small dispensers still exempt: report almost nothing downstream of receipt
                org.miss = {"receiving": rng.uniform(0.3, 0.7), "dispensing": rng.uniform(0.6, 1.0)}
            elif profile < 0.6:
                org.miss = {"receiving": rng.uniform(0.05, 0.3), "dispensing": rng.uniform(0.1, 0.4)}
            else:
                org.miss = {"receiving": rng.uniform(0.0, 0.05), "dispensing": rng.uniform(0.0, 0.05)}
