"""Build the compact geography extract in simulator/data/ from the ARCOS support tables.

Source: the Washington Post ARCOS API support tables (wpinvestigative/arcos-api, commit 3a8bc22,
folder data/), ODbL; underlying data DEA ARCOS via MDL 2804. A copy lives in
/work/shared/data/arcos/ (see SOURCE.md there). The simulator must run where that folder is
absent, so this script derives three small gzip'd CSV files that are committed with the app:

pharmacies.csv.gz  county_fips, lat, lon
    Every geocoded ARCOS buyer of pharmacies_latlon12.csv (82,721 rows), joined to its county
    FIPS through pharmacies_counties14.csv on the DEA number. Coordinates are rounded to 3
    decimals (about 110 m). The DEA number and every name are dropped: the simulator invents
    synthetic business names and only borrows the real places.

counties.csv.gz    county_fips, state, population, dosage_units, transactions, pharmacies, lat, lon
    Population: ACS B01003_001 for 2014 (pop_counties_20062014.csv, latest year per county).
    Dosage units and transaction counts: county_annual14.csv, 2014 (oxycodone + hydrocodone
    pills bought by the county's pharmacies; used as a relative demand weight, not as a drug
    volume). pharmacies and lat/lon: count and mean position of the county's geocoded buyers.

distributors.csv.gz  family_rank, family_size, activity, county_fips, state
    One row per ARCOS reporter facility (detail_list_reporters14.csv) whose business activity is
    DISTRIBUTOR, REVERSE DISTRIB or MANUFACTURER. Families are replaced by their rank in number
    of facilities within their activity (1 = largest), so the extract keeps the real size
    distribution (three national wholesalers with 30-45 DCs each, then a long tail of one-site
    distributors) and the real facility counties, without names.

Run from the project root:  python -m simulator.build_geo [--arcos /work/shared/data/arcos]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
from collections import Counter, defaultdict
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_ARCOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "arcos"
ACTIVITIES = {"DISTRIBUTOR": "distributor", "REVERSE DISTRIB": "reverse_distributor", "MANUFACTURER": "manufacturer"}


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _write_gz(path: Path, header: list[str], rows: list[tuple]) -> int:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    # mtime=0 keeps the bytes identical from one build to the next.
    data = gzip.compress(buf.getvalue().encode(), compresslevel=9, mtime=0)
    path.write_bytes(data)
    return len(data)


def build(arcos: Path, out: Path = DATA_DIR) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    county_of = {r["BUYER_DEA_NO"]: r["county_fips"] for r in _read(arcos / "pharmacies_counties14.csv")}
    pharmacies = []
    for r in _read(arcos / "pharmacies_latlon12.csv"):
        fips = county_of.get(r["BUYER_DEA_NO"], "")
        try:
            lat, lon = round(float(r["lat"]), 3), round(float(r["lon"]), 3)
        except ValueError:
            continue
        if len(fips) == 5 and fips.isdigit():
            pharmacies.append((fips, lat, lon))
    pharmacies.sort()

    population: dict[str, tuple[int, int]] = {}
    state_of: dict[str, str] = {}
    for r in _read(arcos / "pop_counties_20062014.csv"):
        fips, year = r["countyfips"], int(r["year"])
        if not fips or not r["population"].isdigit():
            continue
        if fips not in population or population[fips][0] < year:
            population[fips] = (year, int(r["population"]))
        state_of[fips] = r["BUYER_STATE"]
    volume: dict[str, tuple[int, int]] = {}
    for r in _read(arcos / "county_annual14.csv"):
        if r["year"] == "2014" and r["countyfips"]:
            volume[r["countyfips"]] = (int(float(r["DOSAGE_UNIT"] or 0)), int(float(r["count"] or 0)))
    positions: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for fips, lat, lon in pharmacies:
        positions[fips].append((lat, lon))
    counties = []
    for fips in sorted(population):
        pts = positions.get(fips)
        if not pts:
            continue  # no geocoded pharmacy: nothing to place there
        lat = round(sum(p[0] for p in pts) / len(pts), 3)
        lon = round(sum(p[1] for p in pts) / len(pts), 3)
        dosage, count = volume.get(fips, (0, 0))
        counties.append((fips, state_of[fips], population[fips][1], dosage, count, len(pts), lat, lon))

    fips_by_name = {(r["BUYER_COUNTY"], r["BUYER_STATE"]): r["countyfips"] for r in _read(arcos / "county_fips.csv")}
    known = {c[0] for c in counties}
    biggest_in_state: dict[str, tuple[int, str]] = {}
    for c in counties:
        if c[1] not in biggest_in_state or biggest_in_state[c[1]][0] < c[2]:
            biggest_in_state[c[1]] = (c[2], c[0])
    reporters = [r for r in _read(arcos / "detail_list_reporters14.csv") if r["REPORTER_BUS_ACT"] in ACTIVITIES]
    seen_dea: set[str] = set()
    facilities = []
    for r in reporters:
        if r["REPORTER_DEA_NO"] in seen_dea:
            continue
        seen_dea.add(r["REPORTER_DEA_NO"])
        family = r["Reporter_family"] or r["REPORTER_NAME"]
        fips = fips_by_name.get((r["REPORTER_COUNTY"].upper(), r["REPORTER_STATE"]), "")
        if fips not in known:
            fips = biggest_in_state.get(r["REPORTER_STATE"], (0, ""))[1]
        if fips:
            facilities.append((ACTIVITIES[r["REPORTER_BUS_ACT"]], family, fips, r["REPORTER_STATE"]))
    sizes = Counter((a, f) for a, f, _, _ in facilities)
    rank: dict[tuple[str, str], int] = {}
    for activity in sorted(set(ACTIVITIES.values())):
        fams = sorted((k for k in sizes if k[0] == activity), key=lambda k: (-sizes[k], k[1]))
        for i, k in enumerate(fams, start=1):
            rank[k] = i
    distributors = sorted((rank[(a, f)], sizes[(a, f)], a, fips, st) for a, f, fips, st in facilities)
    distributors = [(r_, n, a, fips, st) for r_, n, a, fips, st in distributors]
    distributors.sort(key=lambda x: (x[2], x[0], x[3]))

    sizes_written = {
        "pharmacies.csv.gz": _write_gz(out / "pharmacies.csv.gz", ["county_fips", "lat", "lon"], pharmacies),
        "counties.csv.gz": _write_gz(
            out / "counties.csv.gz",
            ["county_fips", "state", "population", "dosage_units", "transactions", "pharmacies", "lat", "lon"],
            counties,
        ),
        "distributors.csv.gz": _write_gz(
            out / "distributors.csv.gz",
            ["family_rank", "family_size", "activity", "county_fips", "state"],
            distributors,
        ),
    }
    return {
        **sizes_written,
        "pharmacy_rows": len(pharmacies),
        "county_rows": len(counties),
        "facility_rows": len(distributors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arcos", type=Path, default=DEFAULT_ARCOS, help="folder with the ARCOS support tables")
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    for key, value in build(args.arcos, args.out).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
