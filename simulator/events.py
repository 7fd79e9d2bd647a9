"""EPCIS 2.0 JSON event and document builders, written for speed (plain dicts, one dumps per document).

Standard CBV values are bare words; every event has an explicit ``urn:uuid:`` eventID drawn
from the run's seed, so labels can name events without recomputing hashes.
"""

from __future__ import annotations

import datetime as dt
import json
import random

from simulator.geo import us_dst_days

EPCIS_CONTEXT = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"cbvmda": "urn:epcglobal:cbv:mda:"},
]
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# A simulation day's document window runs from 08:00 UTC (midnight Pacific standard time) to
# 08:00 UTC the next day, so a US business day never straddles two windows.
WINDOW_SHIFT_MS = 8 * HOUR_MS


def offset_str(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    m = abs(minutes)
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


class Clock:
    """Simulation time: integer milliseconds since 00:00 UTC of the start date."""

    def __init__(self, start: dt.date, days: int) -> None:
        self.start = start
        self.days = days
        # Date strings for every local day the run can touch (late events run past the horizon).
        self._dates = [(start + dt.timedelta(days=i)).isoformat() for i in range(-400, days + 400)]
        self._date_base = 400
        self._dst: list[bool] = []
        spans = {y: us_dst_days(y) for y in range(start.year - 2, start.year + 4)}
        for i in range(-400, days + 400):
            d = start + dt.timedelta(days=i)
            a, b = spans[d.year]
            self._dst.append(a <= d < b)
        self._offsets = {m: offset_str(m) for m in range(-14 * 60, 14 * 60 + 1, 15)}
        self._epoch = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
        # "THH:MM:" per minute of the day and "SS.mmm" per millisecond of the minute
        self._hm = [f"T{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
        self._sms = [f"{s:02d}.{ms:03d}" for s in range(60) for ms in range(1000)]

    def offset(self, std_minutes: int, observes_dst: bool, day: int) -> int:
        if observes_dst and self._dst[day + self._date_base]:
            return std_minutes + 60
        return std_minutes

    def local(self, local_ms: int, off_min: int) -> str:
        """eventTime text for a local wall-clock time (ms since local midnight of day 0)."""
        day, ms = divmod(local_ms, DAY_MS)
        minute, ms = divmod(ms, 60_000)
        return self._dates[day + self._date_base] + self._hm[minute] + self._sms[ms] + self._offsets[off_min]

    def utc(self, t_ms: int) -> str:
        day, ms = divmod(t_ms, DAY_MS)
        minute, ms = divmod(ms, 60_000)
        return self._dates[day + self._date_base] + self._hm[minute] + self._sms[ms] + "Z"

    def date(self, day: int) -> str:
        return self._dates[day + self._date_base]

    def offstr(self, off_min: int) -> str:
        return self._offsets[off_min]

    def datetime(self, t_ms: int) -> dt.datetime:
        return self._epoch + dt.timedelta(milliseconds=t_ms)

    @staticmethod
    def window(t_ms: int) -> int:
        return (t_ms - WINDOW_SHIFT_MS) // DAY_MS


class EventIds:
    """Deterministic RFC 4122 version-4 UUID URNs from a dedicated random stream."""

    def __init__(self, seed: int) -> None:
        self._bits = random.Random(f"event-ids/{seed}").getrandbits

    def next(self) -> str:
        g = self._bits
        return f"urn:uuid:{g(32):08x}-{g(16):04x}-4{g(12):03x}-{0x8000 | g(14):04x}-{g(48):012x}"


def party_lists(
    src_owner: str, src_loc: str, dst_owner: str, dst_loc: str, src_possessor: str = "", dst_possessor: str = ""
) -> tuple[list[dict], list[dict]]:
    sources = [{"type": "owning_party", "source": src_owner}]
    if src_possessor:
        sources.append({"type": "possessing_party", "source": src_possessor})
    sources.append({"type": "location", "source": src_loc})
    dests = [{"type": "owning_party", "destination": dst_owner}]
    if dst_possessor:
        dests.append({"type": "possessing_party", "destination": dst_possessor})
    dests.append({"type": "location", "destination": dst_loc})
    return sources, dests


_CONTEXT_JSON = json.dumps(EPCIS_CONTEXT, separators=(",", ":"))


def document(events: list[str], creation: str, sender: str) -> bytes:
    """An EPCISDocument around events already rendered as JSON text."""
    head = (
        f'{{"@context":{_CONTEXT_JSON},"type":"EPCISDocument","schemaVersion":"2.0",'
        f'"creationDate":"{creation}","sender":"{sender}","epcisBody":{{"eventList":['
    )
    return (head + ",".join(events) + "]}}").encode()


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, check_circular=False)


# Templates for the hot paths. Everything interpolated is a URI, a number, a CBV word or a
# timestamp made here, so nothing needs escaping.


def object_event(
    eid: str,
    ts: str,
    off: str,
    epcs: list[str] | None,
    action: str,
    step: str,
    disp: str,
    rp: str,
    bl: str = "",
    extra: str = "",
    ilmd: str = "",
    qty: str = "",
) -> str:
    parts = ['{"type":"ObjectEvent","eventID":"', eid, '","eventTime":"', ts, '","eventTimeZoneOffset":"', off, '"']
    if epcs:
        parts += [',"epcList":["', '","'.join(epcs), '"]']
    if qty:
        parts += [',"quantityList":', qty]
    parts += [
        ',"action":"',
        action,
        '","bizStep":"',
        step,
        '","disposition":"',
        disp,
        '","readPoint":{"id":"',
        rp,
        '"}',
    ]
    if bl:
        parts += [',"bizLocation":{"id":"', bl, '"}']
    if extra:
        parts.append(extra)
    if ilmd:
        parts.append(ilmd)
    parts.append("}")
    return "".join(parts)


def aggregation_event(
    eid: str, ts: str, off: str, parent: str, children: list[str], action: str, step: str, disp: str, rp: str
) -> str:
    return "".join(
        (
            '{"type":"AggregationEvent","eventID":"',
            eid,
            '","eventTime":"',
            ts,
            '","eventTimeZoneOffset":"',
            off,
            '","parentID":"',
            parent,
            '","childEPCs":["',
            '","'.join(children),
            '"],"action":"',
            action,
            '","bizStep":"',
            step,
            '","disposition":"',
            disp,
            '","readPoint":{"id":"',
            rp,
            '"},"bizLocation":{"id":"',
            rp,
            '"}}',
        )
    )


def ilmd_text(lot: str, expiry: str) -> str:
    return ',"ilmd":{"cbvmda:lotNumber":"' + lot + '","cbvmda:itemExpirationDate":"' + expiry + '"}'
