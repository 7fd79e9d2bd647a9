"""EPCIS 2.0 JSON event and document builders, written for speed (plain dicts, one dumps per document).

Standard CBV values are bare words; every event has an explicit ``urn:uuid:`` eventID drawn
from the run's seed, so labels can name events without recomputing hashes.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Final

import numpy as np

from simulator.geo import us_dst_days

EPCIS_CONTEXT = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"cbvmda": "urn:epcglobal:cbv:mda:"},
]
# Final: mypyc inlines these constants (a plain module global is a dict lookup at every use)
DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
# A simulation day's document window runs from 08:00 UTC (midnight Pacific standard time) to
# 08:00 UTC the next day, so a US business day never straddles two windows.
WINDOW_SHIFT_MS: Final = 8 * HOUR_MS


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
        # 1,060 formats and 60,000 concatenations, not 60,000 two-spec formats (compiled, an f-string with format
        # specs is a slow str.format call)
        millis = [f"{ms:03d}" for ms in range(1000)]
        self._sms = [sec + ms for sec in [f"{s:02d}." for s in range(60)] for ms in millis]

    def offset(self, std_minutes: int, observes_dst: bool, day: int) -> int:
        if observes_dst and self._dst[day + self._date_base]:
            return std_minutes + 60
        return std_minutes

    def local(self, local_ms: int, off_min: int) -> str:
        """eventTime text for a local wall-clock time (ms since local midnight of day 0)."""
        # // and % rather than divmod: compiled, these are plain integer operations
        day, ms = local_ms // DAY_MS, local_ms % DAY_MS
        # f-strings here: one string built (compiled, a + b + c + d makes three)
        date = self._dates[day + self._date_base]
        return f"{date}{self._hm[ms // 60_000]}{self._sms[ms % 60_000]}{self._offsets[off_min]}"

    def utc(self, t_ms: int) -> str:
        day, ms = t_ms // DAY_MS, t_ms % DAY_MS
        return f"{self._dates[day + self._date_base]}{self._hm[ms // 60_000]}{self._sms[ms % 60_000]}Z"

    def date(self, day: int) -> str:
        return self._dates[day + self._date_base]

    def day_minutes(self, day: int) -> list[str]:
        """eventTime text up to the seconds ("YYYY-MM-DDTHH:MM:") for every minute of a day."""
        date = self._dates[day + self._date_base]
        return [date + hm for hm in self._hm]

    def offstr(self, off_min: int) -> str:
        return self._offsets[off_min]

    def datetime(self, t_ms: int) -> dt.datetime:
        return self._epoch + dt.timedelta(milliseconds=t_ms)

    @staticmethod
    def window(t_ms: int) -> int:
        return (t_ms - WINDOW_SHIFT_MS) // DAY_MS


# hex digit (as a byte) -> the variant digit 8, 9, a or b keeping its low two bits (RFC 4122 variant 10xx)
_VARIANT = np.zeros(256, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _VARIANT[_c] = b"89ab"[_i & 3]


# EventIds: the characters of a URN that are not hex digits, and where each character of a URN comes from (an index
# into the 32 hex digits followed by _CONST)
_CONST: Final = b"urn:uuid:-4"
_LAYOUT = np.array(
    [32 + i for i in range(9)]  # "urn:uuid:"
    + list(range(0, 8))
    + [41]  # "-"
    + list(range(8, 12))
    + [41, 42]  # "-4" (version 4)
    + list(range(13, 16))
    + [41]
    + list(range(16, 20))  # the variant digit, then three hex digits
    + [41]
    + list(range(20, 32)),
    dtype=np.intp,
)


class EventIds:
    """Deterministic RFC 4122 version-4 UUID URNs from a dedicated random stream.

    Drawn 4,096 at a time: one big random integer, laid out as text by numpy and cut into URNs (the
    per-event cost is one slice).
    """

    # Final: compiled (mypyc), a plain class attribute would be an instance slot, not EventIds.BATCH
    BATCH: Final = 4096
    WIDTH: Final = 45  # len("urn:uuid:") + 36

    def __init__(self, seed: int) -> None:
        self._bits = random.Random(f"event-ids/{seed}").getrandbits
        self._ready: list[str] = []

    def next(self) -> str:
        ready = self._ready
        if not ready:
            ready = self._refill()
        return ready.pop()

    def _refill(self) -> list[str]:
        n, w = self.BATCH, self.WIDTH
        hexd = np.frombuffer(self._bits(128 * n).to_bytes(16 * n, "big").hex().encode(), dtype=np.uint8)
        # one gather instead of a dozen column assignments: the 32 hex digits (digit 16 turned into the variant
        # digit; digit 12 is dropped for the version "4") followed by the constant characters, laid out by _LAYOUT
        src = np.empty((n, 32 + len(_CONST)), dtype=np.uint8)
        src[:, :32] = hexd.reshape(n, 32)
        src[:, 16] = _VARIANT[src[:, 16]]
        src[:, 32:] = np.frombuffer(_CONST, dtype=np.uint8)
        text = src[:, _LAYOUT]
        block = text.tobytes().decode("ascii")
        out = [block[i : i + w] for i in range(w * (n - 1), -1, -w)]  # reversed: next() pops from the end
        self._ready = out
        return out


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
    if len(events) < 2:
        return (head + ",".join(events) + "]}}").encode()
    # The events are nearly all of a document's bytes: head and tail go onto the first and last event, so the
    # whole body is copied twice (join, encode) instead of four times (join, + head, + tail, encode).
    return ",".join([head + events[0], *events[1:-1], events[-1] + "]}}"]).encode()


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
    # one join over a tuple, absent parts empty (compiled, growing a list of parts cost a third of the time)
    return "".join(
        (
            '{"type":"ObjectEvent","eventID":"',
            eid,
            '","eventTime":"',
            ts,
            '","eventTimeZoneOffset":"',
            off,
            '"',
            ',"epcList":["' if epcs else "",
            '","'.join(epcs) if epcs else "",
            '"]' if epcs else "",
            ',"quantityList":' if qty else "",
            qty,
            ',"action":"',
            action,
            '","bizStep":"',
            step,
            '","disposition":"',
            disp,
            '","readPoint":{"id":"',
            rp,
            '"}',
            ',"bizLocation":{"id":"' if bl else "",
            bl,
            '"}' if bl else "",
            extra,
            ilmd,
            "}",
        )
    )


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
