"""Benign look-alikes and noise a real network has, so anomalies are not trivially separable."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from tests.simulator.conftest import Run, gln_of


def test_look_alikes_of_every_kind_are_present(tiny: Run) -> None:
    kinds = Counter(row["kind"] for row in tiny.lookalikes)
    for kind in (
        "partial_shipment",
        "split_shipment",
        "saleable_return",
        "nonsaleable_return",
        "late_event",
        "error_declaration",
        "corrective_event",
        "3pl_hop",
        "recall",
        "recall_return",
        "expiry_return",
        "destruction",
        "new_partner",
    ):
        assert kinds[kind] > 0, kind
    assert set(kinds) <= {
        "partial_shipment",
        "split_shipment",
        "saleable_return",
        "nonsaleable_return",
        "late_event",
        "error_declaration",
        "error_declared",
        "corrective_event",
        "duplicate_scan",
        "void_shipping",
        "3pl_hop",
        "recall",
        "recall_return",
        "recalled_return",
        "expiry_return",
        "expired_return",
        "destruction",
        "new_partner",
        "shortage_reroute",
    }


def test_every_look_alike_tag_names_an_event_of_the_output(tiny: Run) -> None:
    assert all(row["event_id"] in tiny.by_id for row in tiny.lookalikes)


def test_split_shipments_share_a_purchase_order(tiny: Run) -> None:
    split = [
        tiny.event(r["event_id"])
        for r in tiny.lookalikes
        if r["kind"] == "split_shipment" and tiny.event(r["event_id"])["bizStep"] == "shipping"
    ]
    orders = Counter(next(b["bizTransaction"] for b in e["bizTransactionList"] if b["type"] == "po") for e in split)
    assert [po for po, n in orders.items() if n == 2]


def test_saleable_returns_go_back_to_the_supplier_as_returns(tiny: Run) -> None:
    returns = [
        tiny.event(r["event_id"])
        for r in tiny.lookalikes
        if r["kind"] == "saleable_return" and tiny.event(r["event_id"])["bizStep"] == "shipping"
    ]
    assert returns
    for e in returns:
        assert e["disposition"] == "returned"
        assert any(b["type"] == "rma" for b in e["bizTransactionList"])
        assert tiny.org_kind[gln_of(tiny.sources(e, "owning_party")[0])] in ("dispenser", "hospital")


def test_error_declarations_retract_an_earlier_event_with_a_correction(tiny: Run) -> None:
    retractions = [e for events in tiny.by_id.values() for e in events if "errorDeclaration" in e]
    assert retractions
    for r in retractions:
        original = tiny.event(r["eventID"])
        assert {k: v for k, v in r.items() if k != "errorDeclaration"} == original
        assert tiny.position[id(original)] < tiny.position[id(r)]
        declared = r["errorDeclaration"]
        assert declared["reason"] in ("incorrect_data", "did_not_occur")
        for corrective in declared.get("correctiveEventIDs", []):
            assert corrective in tiny.by_id


def test_some_uploads_arrive_late(tiny: Run) -> None:
    late = {row["event_id"] for row in tiny.lookalikes if row["kind"] == "late_event"}
    assert len(late) > 20
    # a late event sits in a document whose other events are newer than it
    docs_with_late = 0
    for _name, doc in tiny.documents:
        times = [datetime.fromisoformat(e["eventTime"]) for e in doc["epcisBody"]["eventList"]]
        if any(e["eventID"] in late for e in doc["epcisBody"]["eventList"]):
            docs_with_late += 1
            assert min(times) <= max(times)
    assert docs_with_late


def test_pharmacies_see_only_part_of_the_expected_data(tiny: Run) -> None:
    """DSCSA reality: shipping events to dispensers and dispensers' own receipts are partly missing."""
    ships = receipts = 0
    for events in tiny.by_desadv.values():
        kinds = {e["bizStep"] for e in events}
        dest = tiny.destinations(events[0], "location")
        if not dest or tiny.location[gln_of(dest[0])]["role"] not in ("pharmacy", "store", "hospital"):
            continue
        ships += "shipping" in kinds
        receipts += "receiving" in kinds
    transfers = len(
        [
            1
            for events in tiny.by_desadv.values()
            if tiny.destinations(events[0], "location")
            and tiny.location[gln_of(tiny.destinations(events[0], "location")[0])]["role"]
            in ("pharmacy", "store", "hospital")
        ]
    )
    assert ships < transfers
    assert receipts < transfers
    assert ships / transfers > 0.5


def test_some_partners_report_at_lot_level_only(tiny: Run) -> None:
    lot_level = [e for _p, e, _s in tiny.events if e.get("bizStep") == "shipping" and "quantityList" in e]
    assert lot_level


def test_some_partners_clocks_are_off(tiny: Run) -> None:
    assert tiny.manifest["noise"]["clock_skew_partners"]


def test_licence_lapses_and_new_partners_exist_among_legitimate_partners(tiny: Run) -> None:
    statuses = Counter(o["licence_status"] for o in tiny.partners["organizations"])
    assert statuses["active"] > 0
    new = [r for r in tiny.lookalikes if r["kind"] == "new_partner"]
    assert new
