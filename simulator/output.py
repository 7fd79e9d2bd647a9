"""Where generated events go: per-partner buffers flushed as EPCIS documents, plus labels and tallies.

Ordering guarantee: a partner's buffer is flushed before any event that depends on one of its
events (a receipt depends on the shipment) enters another partner's buffer, so documents read
in file order never show an effect before its cause, except for the events deliberately held
back as late uploads. Events arrive already rendered as JSON text (events.py). Every emitted
event is eventually written, so labels, look-alike tags and tallies are recorded on arrival.
No Django here.
"""

from __future__ import annotations

import bisect
import json
import os
from collections import Counter, defaultdict
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

from simulator.events import Clock, document
from simulator.network import Org

MAX_EVENTS_PER_DOCUMENT: Final = 1000  # Final: compiled code inlines it

# entry: (t_ms, seq, event JSON text, eventTime text, (org, seq) it follows from or None)
Entry = tuple[int, int, str, str, Any]
_TEXT = itemgetter(2)
_DEP = itemgetter(4)


_TAG_ROW = '{"event_id":"%s","kind":"%s","transfer_key":"%s","event_time":"%s"}\n'


class FileWriter:
    """Writes the document files: one open, write and close each (os-level: no buffered file object).

    Measured on a loaded two-core VM, a writer thread made runs slower, not faster: the kernel's work of
    creating a file is CPU time, not waiting, and handing the GIL back and forth cost more than it hid.
    """

    FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = f"{root}{os.sep}"  # os.open takes a str: no Path object per file
        self._made: set[str] = set()

    def write(self, name: str, body: bytes) -> None:
        folder = name.rpartition("/")[0]
        if folder not in self._made:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
            self._made.add(folder)
        fd = os.open(self._prefix + name, self.FLAGS, 0o644)
        try:
            done = os.write(fd, body)
            while done < len(body):  # a short write (a full disk, a signal) goes on where it stopped
                done += os.write(fd, memoryview(body)[done:])
        finally:
            os.close(fd)


class Sink:
    """Buffers events per submitting organization and writes documents, labels and look-alike tags."""

    def __init__(self, out_dir: Path | None, orgs: list[Org], clock: Clock, run: str, seed: int) -> None:
        self.out_dir = out_dir
        self.orgs = orgs
        self.clock = clock
        self.run = run
        self.seed = seed
        self.day = 0
        self.seq = 0
        self.doc_seq = 0
        self.buf: dict[int, list[Entry]] = {}
        self._upload_order: list[int] = []  # partners with a buffer, in the order they upload on a day
        self.held: dict[int, list[tuple[int, Entry, bool]]] = {}  # held back: (release day, entry, own document)
        self.events_written = 0
        self.labels_written = 0
        self.tags_written = 0
        self.documents: list[tuple[str, str, int, int, str]] = []  # file, gln, events, day, first eventTime
        self.by_org_step: dict[tuple[int, str], int] = {}
        self.edges: dict[tuple[int, int], list[int]] = defaultdict(
            lambda: [0, 0]
        )  # (from, to loc) -> [shipments, packages]
        self.scenario_events: Counter[str] = Counter()
        self.scenario_camo: Counter[str] = Counter()
        self.incident_events: Counter[str] = Counter()
        self.tag_counts: Counter[str] = Counter()
        self.late_events = 0
        self.error_declarations = 0
        self.memory_docs: list[tuple[int, bytes]] = []
        self.label_rows: list[dict] = []
        self.tag_rows: list[dict] = []
        self.document_count = 0
        self._files: FileWriter | None = None
        if out_dir is not None:
            (out_dir / "documents").mkdir(parents=True, exist_ok=True)
            self._files = FileWriter(out_dir)
            self._labels = open(out_dir / "labels.jsonl", "w", encoding="utf-8")  # noqa: SIM115
            self._tags = open(out_dir / "lookalikes.jsonl", "w", encoding="utf-8")  # noqa: SIM115
            # the index is streamed too: a large run has hundreds of thousands of documents
            self._index = open(out_dir / "documents.csv", "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._index.write("file,sender_gln,events,first_event_time\n")
        else:
            self._labels = self._tags = self._index = None  # type: ignore[assignment]

    # --- intake ---

    def emit(
        self,
        org: int,
        t: int,
        text: str,
        eid: str,
        etime: str,
        step: str,
        *,
        dep: int = -1,
        dep_seq: int = 0,
        label: Any = None,
        tag: Any = None,
        edge: Any = None,
        late_days: int = 0,
        error: bool = False,
        defer_days: int = 0,
    ) -> int:
        """Buffer one event; returns its sequence number.

        dep/dep_seq: the event of another partner this one follows from (a receipt follows its shipment): it
        is written first. late_days: a late upload (tagged). defer_days: sent in a later upload, on time for
        what it is (an errorDeclaration follows the event it retracts, in a document of its own).
        """
        self.seq += 1
        key = (org, step)
        counts = self.by_org_step
        counts[key] = counts.get(key, 0) + 1
        if error:
            self.error_declarations += 1
        if edge is not None:
            e = self.edges[(edge[0], edge[1])]
            e[0] += 1
            e[1] += edge[2]
        if label is not None:
            if isinstance(label, list):  # one event can carry the goods of several incidents
                for one in label:
                    self._label(eid, etime, one)
            else:
                self._label(eid, etime, label)
        if late_days > 0:
            self._tag(eid, etime, ("late_event", ""))
        if tag is not None:
            self._tag(eid, etime, tag)
        entry = (t, self.seq, text, etime, (dep, dep_seq) if dep >= 0 and dep != org else None)
        if late_days > 0 or defer_days > 0:
            self.held.setdefault(org, []).append((self.day + max(late_days, defer_days), entry, defer_days > 0))
            self.late_events += late_days > 0
            return self.seq
        buf = self.buf.get(org)
        if buf is None:
            buf = self.buf[org] = []
        buf.append(entry)
        if len(buf) >= MAX_EVENTS_PER_DOCUMENT:
            self.flush(org)
        return self.seq

    def add_edge(self, src: int, dst: int, packages: int) -> None:
        e = self.edges[(src, dst)]
        e[0] += 1
        e[1] += packages

    def emit_plain(self, org: int, t: int, text: str, etime: str, step: str) -> int:
        """emit() for the common case: no dependency, label, tag, edge or delay."""
        self.seq += 1
        key = (org, step)
        counts = self.by_org_step
        counts[key] = counts.get(key, 0) + 1
        buf = self.buf.get(org)
        if buf is None:
            buf = self.buf[org] = []
        buf.append((t, self.seq, text, etime, None))
        if len(buf) >= MAX_EVENTS_PER_DOCUMENT:
            self.flush(org)
        return self.seq

    def end_of_day(self, day: int) -> None:
        for org, held in list(self.held.items()):
            if not held:
                continue
            due = [(e, separate) for d, e, separate in held if d <= day]
            if due:
                self.held[org] = [h for h in held if h[0] > day]
                if any(separate for _e, separate in due):
                    self.flush(org)  # a retraction never shares a document with what it retracts
                self.buf.setdefault(org, []).extend(e for e, _separate in due)
        order = self._upload_order
        if len(order) != len(self.buf):  # partners sent their first events: their places in the order
            # buf never loses a key, so the new partners are its last keys (dicts keep insertion order)
            for o in list(self.buf)[len(order) :]:
                bisect.insort(order, o, key=self._upload_key)
        buf, orgs = self.buf, self.orgs
        for org in order:
            # each partner has its own upload day within its window
            if buf[org] and (day + 1 + org) % orgs[org].window_days == 0:
                self.flush(org)
        self.day = day + 1

    def close(self) -> None:
        for org, held in self.held.items():
            self.buf.setdefault(org, []).extend(e for _d, e, _s in held)
        self.held.clear()
        for org in sorted(self.buf, key=self._upload_key):
            if self.buf[org]:
                self.flush(org)
        if self._labels:
            self._labels.close()
            self._tags.close()
            self._index.close()

    @property
    def by_step(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_org, step), n in self.by_org_step.items():
            out[step] += n
        return out

    @property
    def by_kind_step(self) -> Counter[tuple[str, str]]:
        out: Counter[tuple[str, str]] = Counter()
        for (org, step), n in self.by_org_step.items():
            out[(self.orgs[org].kind, step)] += n
        return out

    # --- output ---

    def _upload_key(self, org_idx: int) -> tuple[int, int]:
        return (self.orgs[org_idx].tier, org_idx)

    def flush(self, org_idx: int, upto: int | None = None) -> None:
        """Write a partner's buffered events (those up to sequence number ``upto``), after whatever they follow from.

        A receipt's shipment has a smaller sequence number than the receipt, so the recursion always moves to
        smaller bounds and ends; partners upload on their own windows and are only made to upload early when a
        document that depends on them is being written.
        """
        buf = self.buf.get(org_idx)
        if not buf:
            return
        limit = upto if upto is not None else self.seq
        needed: dict[int, int] = {}
        for e in compress(buf, map(_DEP, buf)):  # only the entries that follow from another's (picked out in C)
            d = e[4]
            if e[1] <= limit and d[1] > needed.get(d[0], -1):
                needed[d[0]] = d[1]
        for other in sorted(needed):
            if self.buf.get(other):
                self.flush(other, needed[other])
        buf = self.buf.get(org_idx) or []
        if upto is None:
            entries, self.buf[org_idx] = buf, []
        else:
            entries = [e for e in buf if e[1] <= upto]
            if not entries:
                return
            self.buf[org_idx] = [e for e in buf if e[1] > upto]
        entries.sort()  # by time, then sequence number (unique, so the event texts are never compared)
        org = self.orgs[org_idx]
        for start in range(0, len(entries), MAX_EVENTS_PER_DOCUMENT):
            self._write(org, entries[start : start + MAX_EVENTS_PER_DOCUMENT])

    def _write(self, org: Org, chunk: list[Entry]) -> None:
        self.doc_seq += 1
        creation_t = chunk[-1][0] + 60_000  # the chunk is sorted by time
        body = document(list(map(_TEXT, chunk)), self.clock.utc(creation_t), org.pgln[org.digital_link])
        month = self.clock.date(self.day)[:7]
        name = f"documents/{month}/{str(self.doc_seq).zfill(7)}_{org.gln}.json"  # (compiled, :07d is slow)
        if self._files is not None:
            self._files.write(name, body)
        else:
            self.memory_docs.append((org.idx, body))
        if self._index is not None:
            self._index.write(f"{name},{org.gln},{len(chunk)},{chunk[0][3]}\n")
        else:
            self.documents.append((name, org.gln, len(chunk), self.day, chunk[0][3]))
        self.document_count += 1
        self.events_written += len(chunk)

    def _label(self, eid: str, etime: str, label: Any) -> None:
        scenario, incident, role, transfer_key, start_t, camouflaged, subtlety = label
        row = {
            "event_id": eid,
            "scenario": scenario,
            "incident": incident,
            "role": role,
            "transfer_key": transfer_key,
            "start_time": self.clock.utc(start_t),
            "event_time": etime,
            "camouflaged": camouflaged,
            "subtlety": round(subtlety, 3),
            "seed": self.seed,
            "run": self.run,
        }
        self.scenario_events[scenario] += 1
        self.incident_events[incident] += 1
        if camouflaged:
            self.scenario_camo[scenario] += 1
        self.labels_written += 1
        if self._labels:
            self._labels.write(json.dumps(row, separators=(",", ":")) + "\n")
        else:
            self.label_rows.append(row)

    def _tag(self, eid: str, etime: str, tag: Any) -> None:
        kind, transfer_key = tag if isinstance(tag, tuple) else (tag, "")
        self.tag_counts[kind] += 1
        self.tags_written += 1
        if self._tags:
            # the same bytes as json.dumps(row, separators=(",", ":")): every value is an ASCII identifier or URI
            self._tags.write(_TAG_ROW % (eid, kind, transfer_key, etime))
        else:
            self.tag_rows.append({"event_id": eid, "kind": kind, "transfer_key": transfer_key, "event_time": etime})
