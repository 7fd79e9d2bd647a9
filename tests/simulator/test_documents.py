"""The EPCIS documents: valid against GS1's schema and the service's own checks, with valid keys."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provenance.epcis.identifiers import has_valid_check_digit
from simulator import geo
from tests.simulator.conftest import Run, gln_of, key_of

SCHEMA_PLACES = [
    Path(__file__).resolve().parents[2] / "provenance" / "epcis" / "schema" / "EPCIS-JSON-Schema.json",
    Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "simulator" / "EPCIS-JSON-Schema.json",
    Path(__file__).resolve().parents[3] / "shared" / "conformance" / "gs1-epcis" / "EPCIS-JSON-Schema.json",
]
UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _schema_validator():  # type: ignore[no-untyped-def]
    path = next((p for p in SCHEMA_PLACES if p.exists()), None)
    if path is None:
        pytest.skip("GS1's EPCIS JSON schema is not available")
    schema = json.loads(path.read_text(encoding="utf-8"))
    try:
        import jsonschema_rs

        return jsonschema_rs.Draft7Validator(schema, validate_formats=True)
    except ImportError:
        from jsonschema import Draft7Validator, FormatChecker

        return Draft7Validator(schema, format_checker=FormatChecker())


def _invalid_documents(run: Run) -> list[tuple[str, str]]:
    validator = _schema_validator()
    invalid = []
    for name, doc in run.documents:
        errors = list(validator.iter_errors(doc))
        if errors:
            invalid.append((name, errors[0].message[:200]))
    return invalid


def test_every_document_is_valid_against_the_gs1_schema(tiny: Run) -> None:
    assert _invalid_documents(tiny) == []


def test_documents_stay_valid_when_incidents_are_many(busy: Run) -> None:
    # clones and refilled packs share serials with genuine ones: no epcList may repeat one (uniqueItems)
    assert _invalid_documents(busy) == []


def test_every_document_passes_the_capture_checks_of_the_service(tiny: Run) -> None:
    from provenance.epcis.privacy import patient_data_problems
    from provenance.epcis.validation import validate_document

    problems = []
    for name, doc in tiny.documents:
        found = validate_document(doc, now=datetime.now(UTC), max_future_skew=timedelta(minutes=5), max_events=1000)
        for i, event in enumerate(doc["epcisBody"]["eventList"]):
            found += patient_data_problems(event, index=i)
        problems += [(name, p.detail[:160]) for p in found]
    assert problems == []


def test_documents_hold_at_most_a_thousand_events_of_one_sender(tiny: Run) -> None:
    sizes = [len(doc["epcisBody"]["eventList"]) for _name, doc in tiny.documents]
    assert max(sizes) <= 1000
    assert sum(sizes) == tiny.manifest["counts"]["events"]
    for name, doc in tiny.documents:
        sender = gln_of(doc["sender"])
        assert name.endswith(f"_{sender}.json")


def test_the_documents_index_lists_every_file_in_load_order(tiny: Run) -> None:
    names = [name for name, _doc in tiny.documents]
    on_disk = sorted(str(p.relative_to(tiny.out)) for p in (tiny.out / "documents").rglob("*.json"))
    assert sorted(names) == on_disk
    assert names == sorted(names, key=lambda n: n.split("/")[-1])


def test_every_gs1_key_has_a_valid_check_digit(tiny: Run) -> None:
    for o in tiny.partners["organizations"]:
        assert has_valid_check_digit(o["gln"]), o["gln"]
    for loc in tiny.partners["locations"]:
        assert has_valid_check_digit(loc["gln"]), loc["gln"]
    for p in tiny.partners["products"]:
        assert len(p["gtin"]) == 14
        assert has_valid_check_digit(p["gtin"])
        # US NDC-based GTIN: indicator 0, "03", the 10-digit NDC, check digit
        assert p["gtin"][:3] == "003"
        assert p["gtin"][3:13] == p["ndc"].replace("-", "")
    keys = set()
    for _pos, e, _s in tiny.events:
        for field in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
            keys.update(key_of(u) for u in e.get(field, []))
        if "parentID" in e:
            keys.add(key_of(e["parentID"]))
    for k in keys:
        if k[0] == "sgtin":
            assert has_valid_check_digit(k[1]), k
            assert 1 <= len(k[2]) <= 20, k
        elif k[0] == "sscc":
            assert len(k[1]) == 18, k
            assert has_valid_check_digit(k[1]), k


def test_identifiers_come_as_epc_urns_and_as_gs1_digital_links(tiny: Run) -> None:
    forms = {e["readPoint"]["id"].split(":")[0] for _p, e, _s in tiny.events}
    assert forms == {"urn", "https"}
    urn_share = sum(e["readPoint"]["id"].startswith("urn:") for _p, e, _s in tiny.events) / len(tiny.events)
    assert urn_share > 0.5


def test_every_event_has_a_uuid_event_id_and_only_retractions_repeat_one(tiny: Run) -> None:
    for event_id, events in tiny.by_id.items():
        assert UUID_URN.match(event_id), event_id
        if len(events) > 1:
            assert len(events) == 2
            assert sum("errorDeclaration" in e for e in events) == 1


def test_standard_vocabulary_is_written_as_bare_words(tiny: Run) -> None:
    for _p, e, _s in tiny.events:
        assert ":" not in e.get("bizStep", "")
        assert ":" not in e.get("disposition", "")


def test_time_zone_offsets_are_those_of_the_location(tiny: Run) -> None:
    for _p, e, _s in tiny.events:
        loc = tiny.location.get(gln_of(e["readPoint"]["id"]))
        assert loc is not None
        std = geo.state_offset(loc["state"], loc["lon"])
        observes = loc["state"] not in geo.NO_DST_STATES
        day = datetime.fromisoformat(e["eventTime"]).date()
        start, end = geo.us_dst_days(day.year)
        minutes = std + (60 if observes and start <= day < end else 0)
        sign = "-" if minutes < 0 else "+"
        assert e["eventTimeZoneOffset"] == f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        assert e["eventTime"].endswith(e["eventTimeZoneOffset"])


def test_commissioning_carries_lot_and_expiry_in_ilmd_and_the_prefix_is_declared(tiny: Run) -> None:
    commissions = [e for _p, e, _s in tiny.events if e.get("bizStep") == "commissioning"]
    assert commissions
    for e in commissions:
        assert e["action"] == "ADD"
        assert set(e["ilmd"]) == {"cbvmda:lotNumber", "cbvmda:itemExpirationDate"}
        datetime.strptime(e["ilmd"]["cbvmda:itemExpirationDate"], "%Y-%m-%d")
    for _name, doc in tiny.documents:
        assert {"cbvmda": "urn:epcglobal:cbv:mda:"} in doc["@context"]


def test_shipments_name_owning_parties_and_locations_on_both_sides(tiny: Run) -> None:
    for _p, e, _s in tiny.events:
        if e.get("bizStep") in ("shipping", "receiving"):
            assert len(tiny.sources(e, "owning_party")) == 1
            assert len(tiny.sources(e, "location")) == 1
            assert len(tiny.destinations(e, "owning_party")) == 1
            assert len(tiny.destinations(e, "location")) == 1
            assert {b["type"] for b in e["bizTransactionList"]} in ({"po", "desadv"}, {"rma", "desadv"})


def test_third_party_logistics_appear_as_possessing_parties(tiny: Run) -> None:
    possessed = [
        e
        for _p, e, _s in tiny.events
        if tiny.sources(e, "possessing_party") or tiny.destinations(e, "possessing_party")
    ]
    assert possessed
    for e in possessed:
        parties = tiny.sources(e, "possessing_party") + tiny.destinations(e, "possessing_party")
        assert {tiny.org_kind[gln_of(p)] for p in parties} == {"3pl"}


def test_every_event_type_of_the_life_of_the_goods_is_there(tiny: Run) -> None:
    steps = {(e["type"], e.get("bizStep")) for _p, e, _s in tiny.events}
    for expected in [
        ("ObjectEvent", "commissioning"),
        ("AggregationEvent", "packing"),
        ("ObjectEvent", "shipping"),
        ("ObjectEvent", "receiving"),
        ("AggregationEvent", "unpacking"),
        ("ObjectEvent", "dispensing"),
        ("ObjectEvent", "destroying"),
        ("TransformationEvent", "repackaging"),
        ("ObjectEvent", "holding"),
    ]:
        assert expected in steps
    dispositions = {e.get("disposition") for _p, e, _s in tiny.events}
    assert {"dispensed", "returned", "recalled", "expired", "destroyed", "in_transit"} <= dispositions


def test_dispensing_names_the_dispenser_and_nothing_about_a_patient(tiny: Run) -> None:
    personal = re.compile(
        r"patient|prescri|birth|\bdob\b|ssn|first.?name|last.?name|address|phone|email|\brx", re.IGNORECASE
    )
    for _p, e, _s in tiny.events:
        if e.get("bizStep") == "dispensing":
            assert set(e) <= {
                "type",
                "eventID",
                "eventTime",
                "eventTimeZoneOffset",
                "epcList",
                "action",
                "bizStep",
                "disposition",
                "readPoint",
            }
            assert tiny.org_kind[tiny.location[gln_of(e["readPoint"]["id"])]["organization_gln"]] in (
                "dispenser",
                "hospital",
            )
    text = "\n".join(json.dumps(doc) for _n, doc in tiny.documents)
    keys = set(re.findall(r'"([A-Za-z:_]+)":', text))
    assert not [k for k in keys if personal.search(k)]


def test_receipts_arrive_after_their_shipments_unless_an_upload_was_late(tiny: Run) -> None:
    # late uploads, corrections (sent when the mistake is found) and double scans may come after the receipt
    late = {
        row["event_id"]
        for row in tiny.lookalikes
        if row["kind"] in ("late_event", "corrective_event", "duplicate_scan")
    }
    checked = 0
    for key, events in tiny.by_desadv.items():
        ships = [e for e in events if e["bizStep"] == "shipping"]
        receipts = [e for e in events if e["bizStep"] == "receiving"]
        for r in receipts:
            for s in ships:
                if s["eventID"] in late:
                    continue
                assert tiny.position[id(s)] < tiny.position[id(r)], key
                checked += 1
    assert checked > 100


def test_master_data_covers_every_party_location_and_product_in_the_events(tiny: Run) -> None:
    glns = {o["gln"] for o in tiny.partners["organizations"]}
    gtins = {p["gtin"] for p in tiny.partners["products"]}
    front_companies = 0
    for _p, e, _s in tiny.events:
        assert gln_of(e["readPoint"]["id"]) in tiny.location
        for party in tiny.sources(e, "owning_party") + tiny.destinations(e, "owning_party"):
            front_companies += gln_of(party) not in glns  # the fence of a theft scenario is nobody we know
        for k in tiny.epcs(e, expand=False):
            if k[0] == "sgtin":
                assert k[1] in gtins
    assert front_companies <= 5
    lots = {(lot["gtin"], lot["lot"]) for lot in tiny.partners["lots"]}
    assert lots
    assert all(len(lot["expiry"]) == 10 for lot in tiny.partners["lots"])


def test_business_names_are_synthetic(tiny: Run) -> None:
    arcos = Path(__file__).resolve().parents[3] / "shared" / "data" / "arcos" / "detail_list_reporters14.csv"
    names = [o["name"] for o in tiny.partners["organizations"]]
    assert len(set(names)) == len(names)
    if not arcos.exists():
        pytest.skip("ARCOS registry not available to compare names with")
    import csv

    with open(arcos, encoding="utf-8-sig") as fh:
        real = {w.lower() for r in csv.DictReader(fh) for w in (r["Reporter_family"], r["REPORTER_NAME"]) if w}
    first_words = {w.split()[0].lower() for w in real if w.split()}
    for name in names:
        assert name.lower() not in real
        assert name.split()[0].lower() not in first_words, name
