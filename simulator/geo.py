"""Real US geography for the simulator: pharmacy positions, county demand, distributor sites, time zones.

Reads the extract in simulator/data/ (built by build_geo.py from the ARCOS tables, ODbL). No
Django here.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import simulator

# the package's folder, not this file's: compiled, this module is loaded from simulator/_native/ (native.py)
DATA_DIR = Path(str(simulator.__file__)).resolve().parent / "data"

# Census divisions: a tiny network lives in one, a small one in a few, larger ones nationwide.
DIVISIONS: dict[str, tuple[str, ...]] = {
    "new_england": ("CT", "ME", "MA", "NH", "RI", "VT"),
    "middle_atlantic": ("NJ", "NY", "PA"),
    "east_north_central": ("IL", "IN", "MI", "OH", "WI"),
    "west_north_central": ("IA", "KS", "MN", "MO", "NE", "ND", "SD"),
    "south_atlantic": ("DE", "DC", "FL", "GA", "MD", "NC", "SC", "VA", "WV"),
    "east_south_central": ("AL", "KY", "MS", "TN"),
    "west_south_central": ("AR", "LA", "OK", "TX"),
    "mountain": ("AZ", "CO", "ID", "MT", "NV", "NM", "UT", "WY"),
    "pacific": ("AK", "CA", "HI", "OR", "WA"),
}

# Standard offsets in minutes; states split between zones are decided by longitude below.
_STATE_TZ = {
    **dict.fromkeys(
        [
            "CT",
            "ME",
            "MA",
            "NH",
            "RI",
            "VT",
            "NJ",
            "NY",
            "PA",
            "OH",
            "MI",
            "DE",
            "DC",
            "GA",
            "MD",
            "NC",
            "SC",
            "VA",
            "WV",
        ],
        -300,
    ),
    **dict.fromkeys(["IL", "WI", "IA", "MN", "MO", "AR", "LA", "OK", "AL", "MS"], -360),
    **dict.fromkeys(["CO", "MT", "NM", "UT", "WY", "AZ"], -420),
    **dict.fromkeys(["CA", "NV", "WA"], -480),
    "AK": -540,
    "HI": -600,
}
# (state, longitude threshold, offset west of it, offset east of it)
_SPLIT_STATES = {
    "FL": (-85.0, -360, -300),
    "IN": (-86.8, -360, -300),
    "KY": (-86.0, -360, -300),
    "TN": (-85.3, -360, -300),
    "MI": (-87.5, -360, -300),
    "TX": (-104.5, -420, -360),
    "KS": (-101.5, -420, -360),
    "NE": (-101.0, -420, -360),
    "SD": (-100.5, -420, -360),
    "ND": (-101.0, -420, -360),
    "ID": (-115.5, -480, -420),
    "OR": (-117.8, -480, -420),
}
NO_DST_STATES = {"AZ", "HI"}


def state_offset(state: str, lon: float) -> int:
    """Standard UTC offset in minutes of a US place."""
    if state in _SPLIT_STATES:
        threshold, west, east = _SPLIT_STATES[state]
        return west if lon < threshold else east
    return _STATE_TZ.get(state, -300)


def us_dst_days(year: int) -> tuple[dt.date, dt.date]:
    """First and last+1 local dates of US daylight saving time (2nd Sunday in March to 1st Sunday in November)."""
    march = dt.date(year, 3, 1)
    start = march + dt.timedelta(days=(6 - march.weekday()) % 7 + 7)
    november = dt.date(year, 11, 1)
    end = november + dt.timedelta(days=(6 - november.weekday()) % 7)
    return start, end


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class County:
    fips: str
    state: str
    population: int
    dosage_units: int
    transactions: int
    pharmacies: int
    lat: float
    lon: float


@dataclass(frozen=True)
class Facility:
    family_rank: int
    family_size: int
    activity: str
    county_fips: str
    state: str


@dataclass(frozen=True)
class Geography:
    counties: dict[str, County]
    pharmacies: list[tuple[str, float, float]]  # county_fips, lat, lon
    facilities: list[Facility]

    def state_of(self, fips: str) -> str:
        return self.counties[fips].state


def _rows(name: str, data_dir: Path) -> list[dict[str, str]]:
    with gzip.open(data_dir / name, "rt", encoding="utf-8", newline="") as fh:
        text = fh.read()
    if '"' in text:
        return list(csv.DictReader(io.StringIO(text)))
    # plain numeric CSV: split by hand, several times faster than csv for 80k rows
    lines = text.splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:] if line]


def _pharmacies(data_dir: Path, counties: dict[str, County]) -> list[tuple[str, float, float]]:
    """(county_fips, lat, lon) of every pharmacy: 80k rows, read as columns (no dict per row: a tenth of a second
    less per run)."""
    with gzip.open(data_dir / "pharmacies.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        lines = fh.read().splitlines()
    header = lines[0].split(",")
    if '"' in lines[0] or any('"' in line for line in lines[1:]):
        rows = _rows("pharmacies.csv.gz", data_dir)
        return [(r["county_fips"], float(r["lat"]), float(r["lon"])) for r in rows if r["county_fips"] in counties]
    i_fips, i_lat, i_lon = header.index("county_fips"), header.index("lat"), header.index("lon")
    out = []
    for line in lines[1:]:
        if line:
            f = line.split(",")
            if f[i_fips] in counties:
                out.append((f[i_fips], float(f[i_lat]), float(f[i_lon])))
    return out


@lru_cache(maxsize=2)
def load_geography(data_dir: Path = DATA_DIR) -> Geography:
    counties = {
        r["county_fips"]: County(
            r["county_fips"],
            r["state"],
            int(r["population"]),
            int(r["dosage_units"]),
            int(r["transactions"]),
            int(r["pharmacies"]),
            float(r["lat"]),
            float(r["lon"]),
        )
        for r in _rows("counties.csv.gz", data_dir)
    }
    pharmacies = _pharmacies(data_dir, counties)
    facilities = [
        Facility(int(r["family_rank"]), int(r["family_size"]), r["activity"], r["county_fips"], r["state"])
        for r in _rows("distributors.csv.gz", data_dir)
        if r["county_fips"] in counties
    ]
    return Geography(counties, pharmacies, facilities)
