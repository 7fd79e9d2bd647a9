"""EPCIS validation benchmark (prints figures; never a timed test).

Builds one EPCISDocument of N ObjectEvents (default 1,000; 10 SGTINs each, ILMD, a business
transaction, source and destination parties), then times on one core:
  * GS1's JSON schema alone, with the engine validation.py picked (jsonschema-rs when installed);
  * validate_document (schema + identifiers + vocabulary + times + ILMD checks);
  * patient_data_problems, normalize_event and event_hash over every event.

Usage: .venv/bin/python bench/validate.py [--events 1000] [--repeat 5] [--engine jsonschema]
(--engine jsonschema forces the pure-Python fallback, to compare.)
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.epcis import identifiers, validation  # noqa: E402
from provenance.epcis.eventhash import event_hash  # noqa: E402
from provenance.epcis.normalize import normalize_event  # noqa: E402
from provenance.epcis.privacy import patient_data_problems  # noqa: E402

CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"cbvmda": "urn:epcglobal:cbv:mda:"}]


def pgln(company: str) -> str:
    ref = "0" * (12 - len(company))
    return f"urn:epc:id:pgln:{company}.{ref}"


def document(events: int) -> dict:
    template = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-01T08:00:00.000-05:00",
        "eventTimeZoneOffset": "-05:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"},
        "bizLocation": {"id": "urn:epc:id:sgln:0614141.00777.0"},
        "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:0614141000005:PO-1"}],
        "sourceList": [{"type": "owning_party", "source": pgln("0614141")}],
        "destinationList": [{"type": "owning_party", "destination": pgln("0614141")}],
        "ilmd": {"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2028-06-30"},
    }
    event_list = []
    for i in range(events):
        event = copy.deepcopy(template)
        event["epcList"] = [f"urn:epc:id:sgtin:0614141.107346.{i * 10 + j}" for j in range(10)]
        event_list.append(event)
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T10:00:00.000Z",
        "epcisBody": {"eventList": event_list},
    }


def best_of(repeat: int, work) -> tuple[float, float]:
    """Best and median wall time; identifier caches are emptied first, so every run parses every EPC."""
    timings = []
    for _ in range(repeat):
        identifiers._recognise.cache_clear()
        start = time.perf_counter()
        work()
        timings.append(time.perf_counter() - start)
    return min(timings), statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engine", choices=("auto", "jsonschema"), default="auto")
    args = parser.parse_args()
    if args.engine == "jsonschema":
        sys.modules["jsonschema_rs"] = None  # type: ignore[assignment]  # makes the import fail: the fallback
    engine = validation.schema()
    doc = document(args.events)
    events = doc["epcisBody"]["eventList"]
    now = datetime(2026, 11, 2, tzinfo=UTC)

    def schema_only() -> None:
        for event in events:
            engine.event_errors(event)

    def full() -> None:
        problems = validation.validate_document(
            doc, now=now, max_future_skew=timedelta(minutes=5), max_events=args.events
        )
        assert not problems, problems[:3]

    def rest() -> None:
        for index, event in enumerate(events):
            patient_data_problems(event, index=index)
            normalize_event(event, CONTEXT)
            event_hash(event, CONTEXT)

    print(f"{args.events} events x 10 SGTINs, schema engine: {engine.engine}, best/median of {args.repeat}")
    for name, work in (("schema only", schema_only), ("validate_document", full), ("privacy+normalize+hash", rest)):
        best, median = best_of(args.repeat, work)
        print(f"  {name:<24} {best:7.3f} s  (median {median:.3f} s)  {args.events / best:9.0f} events/s")


if __name__ == "__main__":
    main()
