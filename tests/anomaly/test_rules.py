"""Each deterministic detector fires on the ledger pattern it names, through capture, derivation and scoring,
and stays quiet on an ordinary chain of custody."""

from __future__ import annotations

import pytest

from anomaly import rules
from anomaly.models import Flag
from anomaly.services import transfers_score
from provenance.models import Organization, Transfer
from tests import factories as f
from tests.anomaly.conftest import ALICE_GLN, BOB_GLN, CAROL_GLN, day, packs

pytestmark = pytest.mark.django_db


def hits_by_lot() -> dict[str, list[str]]:
    from anomaly.graph import shipment_graph

    transfers_score(trigger="test")
    graph = shipment_graph()
    out: dict[str, list[str]] = {}
    for t in Transfer.objects.order_by("id"):
        rec = graph.record(t.id)
        out.setdefault(f"{t.from_party.split('/')[-1]}>{t.to_party.split('/')[-1]}:{t.lot_number}", []).extend(
            rec.hits if rec else []
        )
    return out


def all_hits() -> set[str]:
    return {h for hs in hits_by_lot().values() for h in hs}


def test_an_ordinary_chain_of_custody_breaks_no_rule(alice, bob, located, capture):
    p = packs(4)
    capture(alice.client, f.commissioning(ALICE_GLN, p, lot="L1", when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    capture(bob.client, f.receiving(ALICE_GLN, BOB_GLN, p, when=day(3)))
    assert all_hits() == set()
    assert not Flag.objects.exists()


def test_a_serial_never_commissioned_is_unknown(alice, bob, capture):
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, packs(2, "X"), when=day(2)))
    assert "unknown_serial" in all_hits()


def test_a_dispensed_serial_moving_again_is_inactive(alice, bob, carol, capture):
    p = packs(2)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    dispensing = f.receiving(ALICE_GLN, BOB_GLN, p[:1], when=day(4))
    dispensing.update(bizStep="dispensing", disposition="dispensed")
    dispensing.pop("sourceList")
    dispensing.pop("destinationList")
    capture(bob.client, dispensing)
    capture(bob.client, f.shipping(BOB_GLN, CAROL_GLN, p[:1], when=day(6)))
    assert hits_by_lot()[f"{BOB_GLN}>{CAROL_GLN}:L1"] == ["inactive_serial"]


def test_a_serial_shipped_by_a_party_that_does_not_hold_it_has_two_custodians(alice, bob, carol, capture):
    p = packs(3)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    capture(carol.client, f.shipping(CAROL_GLN, BOB_GLN, p[:1], when=day(5)))  # a clone of a pack Bob holds
    assert hits_by_lot()[f"{CAROL_GLN}>{BOB_GLN}:L1"] == ["serial_two_custodians"]


def test_receiving_more_than_was_shipped_is_quantity_inflation(alice, bob, capture):
    p = packs(4)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p[:3], when=day(2)))
    capture(bob.client, f.receiving(ALICE_GLN, BOB_GLN, p, when=day(3)))
    assert "quantity_inflation" in all_hits()


def test_a_receipt_before_its_shipment_is_impossible_travel(alice, bob, located, capture):
    p = packs(2)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(3, 14)))
    capture(bob.client, f.receiving(ALICE_GLN, BOB_GLN, p, when=day(3, 9)))
    assert "impossible_travel" in all_hits()


def test_trading_with_a_revoked_licence_is_an_unlicensed_partner(alice, bob, capture):
    Organization.objects.filter(gln=BOB_GLN).update(licence_status=Organization.LicenceStatus.REVOKED)
    p = packs(2)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    assert "unlicensed_partner" in all_hits()


def test_an_expired_lot_sold_on_is_flagged_but_its_return_is_not(alice, bob, capture):
    p = packs(4)
    capture(
        alice.client,
        f.commissioning(ALICE_GLN, p, lot="OLD", expiry="2026-10-31", when="2026-10-01T08:00:00.000-05:00"),
    )
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p[:2], when=day(2)))
    assert "expired_lot" in all_hits()


def test_a_recalled_lot_moving_is_flagged(alice, bob, capture):
    p = packs(2)
    capture(alice.client, f.commissioning(ALICE_GLN, p, lot="RC", when=day(1)))
    recall = f.commissioning(ALICE_GLN, [], when=day(2))
    recall.pop("epcList")
    recall.pop("ilmd")
    recall.update(
        action="OBSERVE",
        bizStep="holding",
        disposition="recalled",
        quantityList=[{"epcClass": "urn:epc:class:lgtin:0700001.000001.RC", "quantity": 2}],
    )
    capture(alice.client, recall)
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(3)))
    assert "recalled_lot" in all_hits()


def test_a_serial_commissioned_again_under_another_lot_is_a_lot_mismatch(alice, bob, carol, capture):
    p = packs(2)
    capture(alice.client, f.commissioning(ALICE_GLN, p, lot="GEN", when=day(1)))
    capture(carol.client, f.commissioning(CAROL_GLN, p, lot="FAKE", expiry="2030-01-31", when=day(4)))
    capture(carol.client, f.shipping(CAROL_GLN, BOB_GLN, p, when=day(5)))
    # Carol recorded a second commissioning of packs Alice holds. That Alice still holds them is only a feature:
    # a shipment missing from the record looks the same when the last custodian is upstream.
    assert hits_by_lot() == {f"{CAROL_GLN}>{BOB_GLN}:FAKE": ["lot_mismatch"]}


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"transit_h": -0.2}, []),  # clocks disagree by minutes: tolerated
        ({"transit_h": -3.0}, ["impossible_travel"]),
        ({"days_to_expiry": -3.0, "nonsellable": 1.0}, []),  # expired stock on its way to destruction
        ({"days_to_expiry": -3.0}, ["expired_lot"]),
        ({"lot_recalled": 1.0, "to_brand": 1.0}, []),  # a recall return to the manufacturer
        ({"from_licensed": 0.0, "from_known": 0.0}, ["unlicensed_partner"]),
        ({"received_over": 2.0}, ["quantity_inflation"]),
        ({"speed_kmh": 2500.0}, ["impossible_travel"]),
    ],
)
def test_rules_read_facts_exactly(facts, expected):
    assert rules.check(facts) == expected


def test_every_rule_has_a_reason_a_reviewer_can_act_on():
    for code in rules.RULES:
        (reason,) = rules.reasons(
            [code], {"serials": 3, "uncommissioned_serials": 1, "transit_h": -2, "speed_kmh": 1e4}
        )
        assert reason["title"]
        assert reason["reference"]
        assert reason["action"]
        assert reason["detail"]


def test_a_commissioning_uploaded_late_clears_the_unknown_serial(alice, bob, capture):
    p = packs(2)
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(3)))
    capture(alice.client, f.commissioning(ALICE_GLN, p, lot="L1", when=day(1)))  # the manufacturer uploads late
    assert "unknown_serial" not in all_hits()


def _with_despatch_advice(event: dict, asn: str) -> dict:
    event["bizTransactionList"] = [{"type": "desadv", "bizTransaction": f"urn:epcglobal:cbv:bt:{ALICE_GLN}:{asn}"}]
    return event


def test_a_receipt_is_timed_against_the_shipment_it_names(alice, bob, located, capture):
    first, second = packs(2, "A"), packs(2, "B")
    capture(alice.client, f.commissioning(ALICE_GLN, first + second, lot="L1", when=day(1)))
    capture(alice.client, _with_despatch_advice(f.shipping(ALICE_GLN, BOB_GLN, first, when=day(2)), "ASN1"))
    capture(alice.client, _with_despatch_advice(f.shipping(ALICE_GLN, BOB_GLN, second, when=day(6)), "ASN2"))
    # Bob receives the first shipment on day 4 (matched by derivation to the latest open one, shipped on day 6)
    capture(bob.client, _with_despatch_advice(f.receiving(ALICE_GLN, BOB_GLN, first, when=day(4)), "ASN1"))
    assert "impossible_travel" not in all_hits()


def test_a_retracted_shipment_stops_counting(alice, bob, carol, capture):
    p = packs(2)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    wrong = f.shipping(CAROL_GLN, ALICE_GLN, p, when=day(5), event_id=f.new_event_id())
    capture(carol.client, wrong)
    assert "serial_two_custodians" in all_hits()
    # EPCIS 2.0 7.4.1.2: the retraction repeats the retracted event's eventID
    retraction = dict(
        wrong, errorDeclaration={"declarationTime": "2026-11-06T08:00:00.000Z", "reason": "did_not_occur"}
    )
    capture(carol.client, retraction)
    from anomaly.graph import shipment_graph

    transfers_score(trigger="test")
    retracted = [r for r in shipment_graph().replay.records.values() if r.retracted]
    assert len(retracted) == 1
    assert Flag.objects.get(transfer_id=retracted[0].id)  # raised before the retraction; the reviewer closes it


def test_a_pack_held_upstream_is_a_gap_but_one_held_by_a_pharmacy_is_a_clone(alice, bob, carol, capture):
    upstream, dispensed_to_bob = packs(2, "U"), packs(2, "D")
    capture(alice.client, f.commissioning(ALICE_GLN, upstream + dispensed_to_bob, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, dispensed_to_bob, when=day(2)))
    capture(carol.client, f.shipping(CAROL_GLN, BOB_GLN, upstream, when=day(4)))  # Alice's shipment to Carol missing
    capture(carol.client, f.shipping(CAROL_GLN, ALICE_GLN, dispensed_to_bob, when=day(5)))
    hits = hits_by_lot()
    assert hits[f"{CAROL_GLN}>{BOB_GLN}:L1"] == []
    assert hits[f"{CAROL_GLN}>{ALICE_GLN}:L1"] == ["serial_two_custodians"]


def test_packs_taken_in_transit_and_sold_by_a_third_party_are_intercepted(alice, bob, carol, capture):
    p = packs(3)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))  # never received by Bob
    capture(carol.client, f.shipping(CAROL_GLN, ALICE_GLN, p[:2], when=day(12)))  # ten days later, at Carol
    hits = hits_by_lot()
    assert "serial_intercepted" in hits[f"{CAROL_GLN}>{ALICE_GLN}:L1"]
    # the shipment Bob never received is rescored with what surfaced: it was diverted
    assert "shipment_diverted" in hits[f"{ALICE_GLN}>{BOB_GLN}:L1"]
    assert "serial_intercepted" in rules.FLAGGING


def test_a_consignee_that_ships_on_without_recording_its_receipt_intercepts_nothing(alice, bob, carol, capture):
    p = packs(3)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, CAROL_GLN, p, when=day(2)))  # Carol never records the receipt
    capture(carol.client, f.shipping(CAROL_GLN, BOB_GLN, p, when=day(12)))
    hits = hits_by_lot()
    assert hits[f"{CAROL_GLN}>{BOB_GLN}:L1"] == []
    assert hits[f"{ALICE_GLN}>{CAROL_GLN}:L1"] == []


def test_packs_taken_over_within_the_lanes_transit_time_are_a_feature_not_a_flag(alice, bob, carol, capture):
    p = packs(2)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    capture(carol.client, f.shipping(CAROL_GLN, ALICE_GLN, p, when=day(3)))  # a day later: not yet overdue
    from anomaly.graph import shipment_graph
    from anomaly.ml.replay import FEATURES

    hits = hits_by_lot()
    assert "serial_intercepted" not in hits[f"{CAROL_GLN}>{ALICE_GLN}:L1"]
    t = Transfer.objects.get(from_party__endswith=CAROL_GLN)
    assert shipment_graph().record(t.id).x[FEATURES.index("c_frac_intercepted")] == 1.0


def test_a_voided_shipment_is_neither_overdue_nor_diverted(alice, bob, carol, capture):
    p = packs(2)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    void = f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2, 11))
    void.update(bizStep="void_shipping", disposition="sellable_accessible")
    capture(alice.client, void)
    capture(alice.client, f.shipping(ALICE_GLN, CAROL_GLN, p, when=day(9)))  # Alice sells them to Carol instead
    from anomaly.graph import shipment_graph
    from anomaly.ml.replay import FEATURES

    hits = hits_by_lot()
    assert hits[f"{ALICE_GLN}>{BOB_GLN}:L1"] == []
    assert hits[f"{ALICE_GLN}>{CAROL_GLN}:L1"] == []
    graph = shipment_graph()
    graph.age()
    voided = graph.record(Transfer.objects.get(to_party__endswith=BOB_GLN).id)
    assert voided.x[FEATURES.index("r_voided")] == 1.0
    assert voided.x[FEATURES.index("r_open_days")] == 0.0


def test_rule_hits_are_model_features(alice, bob, capture):
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, packs(2, "X"), when=day(2)))
    from anomaly.graph import shipment_graph
    from anomaly.ml.replay import FEATURES

    transfers_score(trigger="test")
    rec = shipment_graph().record(Transfer.objects.get().id)
    on = {name for name, v in zip(FEATURES, rec.x, strict=True) if name.startswith("k_") and v}
    assert on == {f"k_{code}" for code in rec.hits} == {"k_unknown_serial"}
