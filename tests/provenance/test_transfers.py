from __future__ import annotations

import json

import pytest

from provenance.derive import ledger_derive
from provenance.epcis.identifiers import canonical
from provenance.models import Lot, SerializedPackage, Transfer, Watermark
from tests import factories as f

pytestmark = pytest.mark.django_db

ALICE_GLN = "0700001000008"
BOB_GLN = "0700002000007"


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """Capture through HTTP; derivation is kicked after the capture commits, as in production."""

    def _capture(client, *events):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post(
                "/epcis/capture", data=json.dumps(f.document(*events)), content_type="application/json"
            )
        assert response.status_code == 202, response.content
        assert len(callbacks) == 1
        return response

    return _capture


def test_a_shipment_and_its_receipt_become_one_transfer_per_lot(alice, bob, capture):
    packs = [f.sgtin_urn("0700001", f"T{i}") for i in range(5)]
    capture(
        alice.client, f.commissioning(ALICE_GLN, packs[:3], lot="LA"), f.commissioning(ALICE_GLN, packs[3:], lot="LB")
    )
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, packs))
    capture(bob.client, f.receiving(ALICE_GLN, BOB_GLN, packs[:4]))
    transfers = {t.lot_number: t for t in Transfer.objects.all()}
    assert set(transfers) == {"LA", "LB"}
    assert transfers["LA"].quantity == 3
    assert transfers["LA"].received_quantity == 3
    assert transfers["LB"].quantity == 2
    assert transfers["LB"].received_quantity == 1
    assert transfers["LA"].status == Transfer.Status.RECEIVED
    assert transfers["LA"].from_organization == alice.organization
    assert transfers["LA"].to_organization == bob.organization
    assert transfers["LA"].ship_time < transfers["LA"].receive_time
    assert Lot.objects.get(lot_number="LA").expiry.isoformat() == "2028-06-30"


def test_a_shipped_case_counts_the_packs_inside_it(alice, bob, capture):
    packs = [f.sgtin_urn("0700001", f"C{i}") for i in range(4)]
    case = f.sscc_urn("0700001", "0000000011")
    capture(alice.client, f.commissioning(ALICE_GLN, packs))
    packing = {
        "type": "AggregationEvent",
        "eventTime": "2026-11-01T09:00:00.000-05:00",
        "eventTimeZoneOffset": "-05:00",
        "parentID": case,
        "childEPCs": packs,
        "action": "ADD",
        "bizStep": "packing",
        "readPoint": {"id": f.sgln_urn(ALICE_GLN)},
    }
    capture(alice.client, packing)
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, [case]))
    transfer = Transfer.objects.get()
    assert transfer.quantity == 4
    assert SerializedPackage.objects.filter(parent=canonical(case)).count() == 4


def test_a_receipt_without_a_recorded_shipment_is_kept_as_received_only(alice, bob, capture):
    packs = [f.sgtin_urn("0700001", "X1")]
    capture(alice.client, f.commissioning(ALICE_GLN, packs))
    capture(bob.client, f.receiving(ALICE_GLN, BOB_GLN, packs))
    assert Transfer.objects.get().status == Transfer.Status.RECEIVED_ONLY


def test_derivation_is_driven_by_a_watermark_and_idempotent(alice, bob, capture):
    packs = [f.sgtin_urn("0700001", "W1")]
    capture(alice.client, f.commissioning(ALICE_GLN, packs))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, packs))
    assert Watermark.objects.get(name="derive").seq == 2
    assert ledger_derive() == 0
    assert Transfer.objects.count() == 1


def _desadv(event: dict, number: str) -> dict:
    event["bizTransactionList"] = [{"type": "desadv", "bizTransaction": f"urn:epcglobal:cbv:bt:{ALICE_GLN}:{number}"}]
    return event


def test_a_receipt_pairs_with_the_shipment_its_despatch_advice_names(alice, bob, capture):
    packs = [f.sgtin_urn("0700001", f"D{i}") for i in range(6)]
    capture(alice.client, f.commissioning(ALICE_GLN, packs, lot="LD"))
    first = _desadv(f.shipping(ALICE_GLN, BOB_GLN, packs[:3], when="2026-11-02T08:00:00.000-05:00"), "1001")
    second = _desadv(f.shipping(ALICE_GLN, BOB_GLN, packs[3:], when="2026-11-02T09:00:00.000-05:00"), "1002")
    capture(alice.client, first, second)
    # the earlier shipment arrives first; without the despatch advice the later one would be taken
    capture(bob.client, _desadv(f.receiving(ALICE_GLN, BOB_GLN, packs[:3]), "1001"))
    received = Transfer.objects.get(status=Transfer.Status.RECEIVED)
    assert received.despatch_advice == f"urn:epcglobal:cbv:bt:{ALICE_GLN}:1001"
    assert received.received_quantity == 3
    assert Transfer.objects.get(status=Transfer.Status.IN_TRANSIT).despatch_advice.endswith(":1002")


def test_without_a_despatch_advice_a_receipt_pairs_with_the_shipment_of_its_cases(alice, bob, capture):
    packs = [f.sgtin_urn("0700001", f"E{i}") for i in range(6)]
    capture(alice.client, f.commissioning(ALICE_GLN, packs, lot="LE"))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, packs[:3], when="2026-11-02T08:00:00.000-05:00"))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, packs[3:], when="2026-11-02T09:00:00.000-05:00"))
    capture(bob.client, f.receiving(ALICE_GLN, BOB_GLN, packs[:2]))  # part of the first shipment
    received = Transfer.objects.get(status=Transfer.Status.RECEIVED)
    first_ship_seq = min(Transfer.objects.values_list("ship_seq", flat=True))
    assert received.ship_seq == first_ship_seq
    assert (received.quantity, received.received_quantity) == (3, 2)


def test_a_despatch_advice_naming_only_some_lots_still_pairs_the_others(alice, bob, capture):
    named = [f.sgtin_urn("0700001", f"F{i}") for i in range(2)]
    other = [f.sgtin_urn("0700001", f"G{i}") for i in range(2)]
    capture(alice.client, f.commissioning(ALICE_GLN, named, lot="LF"), f.commissioning(ALICE_GLN, other, lot="LG"))
    capture(alice.client, _desadv(f.shipping(ALICE_GLN, BOB_GLN, named, when="2026-11-02T08:00:00.000-05:00"), "2001"))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, other, when="2026-11-02T09:00:00.000-05:00"))
    # one receipt for both; its despatch advice names only the shipment of lot LF
    capture(bob.client, _desadv(f.receiving(ALICE_GLN, BOB_GLN, named + other), "2001"))
    transfers = {t.lot_number: t for t in Transfer.objects.all()}
    assert set(transfers) == {"LF", "LG"}
    assert all(t.status == Transfer.Status.RECEIVED for t in transfers.values())
    assert transfers["LF"].despatch_advice.endswith(":2001")
    assert transfers["LG"].received_quantity == 2
    assert not Transfer.objects.filter(status=Transfer.Status.RECEIVED_ONLY).exists()
