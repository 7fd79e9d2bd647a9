"""Normalised events: canonical identifiers, bare CBV words, UTC times, lot and expiry from ILMD."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

import pytest

from provenance.epcis.identifiers import IdentifierError
from provenance.epcis.normalize import ErrorDeclaration, normalize_event, to_event_json

from .support import CONTEXT, commissioning_event, shipping_event

SGTIN_2017 = "https://id.gs1.org/01/10614141073464/21/2017"
SGTIN_2018 = "https://id.gs1.org/01/10614141073464/21/2018"
SGLN = "https://id.gs1.org/414/0614141007776"


def test_a_commissioning_event_is_normalised() -> None:
    n = normalize_event(commissioning_event(), CONTEXT)
    assert (n.event_type, n.action, n.biz_step, n.disposition) == ("ObjectEvent", "ADD", "commissioning", "active")
    assert n.event_time == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert n.event_time.utcoffset() is not None
    assert n.event_time_zone_offset == "-05:00"
    assert (n.read_point, n.biz_location) == (SGLN, SGLN)
    assert n.epcs == [("epc", SGTIN_2017), ("epc", SGTIN_2018)]
    assert (n.lot_number, n.expiry_date) == ("L2026A", date(2028, 6, 30))
    assert (n.error_declaration, n.event_id) == (None, None)


def test_a_shipping_event_keeps_its_parties_and_transactions() -> None:
    n = normalize_event(shipping_event(), CONTEXT)
    assert n.sources == [("owning_party", "https://id.gs1.org/417/0614141000005")]
    assert n.destinations == [("owning_party", "https://id.gs1.org/417/4012345000009")]
    assert n.biz_transactions == [("po", "urn:epcglobal:cbv:bt:0614141000005:PO-77")]
    assert n.lot_number is None


def test_aggregation_roles_are_parent_child_and_child_class() -> None:
    event = {
        "type": "AggregationEvent",
        "eventTime": "2026-11-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "parentID": "urn:epc:id:sscc:0614141.1234567890",
        "childEPCs": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "childQuantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 200, "uom": "KGM"},
                              {"epcClass": "urn:epc:idpat:sgtin:4012345.098765.*", "quantity": 10}],
        "action": "ADD",
    }  # fmt: skip
    n = normalize_event(event)
    assert n.epcs == [("parent", "https://id.gs1.org/00/106141412345678908"), ("child", SGTIN_2017)]
    assert n.quantities == [
        ("child_class", "https://id.gs1.org/01/04012345123456/10/998877", 200.0, "KGM"),
        ("child_class", "https://id.gs1.org/01/04012345987652", 10.0, None),
    ]


def test_transformation_roles_are_input_output_and_their_classes() -> None:
    event = {
        "type": "TransformationEvent",
        "eventTime": "2026-11-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "inputEPCList": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "outputEPCList": ["https://id.gs1.org/01/10614141073464/21/2018"],
        "inputQuantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 1.5}],
        "outputQuantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.012345.A1"}],
        "transformationID": "urn:epc:id:gdti:0614141.12345.400",
    }
    n = normalize_event(event)
    assert n.action is None
    assert n.epcs == [("input", SGTIN_2017), ("output", SGTIN_2018)]
    assert [(role, quantity) for role, _c, quantity, _u in n.quantities] == [
        ("input_class", 1.5),
        ("output_class", None),
    ]
    assert n.transformation_id == "https://id.gs1.org/253/0614141123452400"


def test_cbv_values_are_bare_words_when_standard_and_uris_otherwise() -> None:
    event = shipping_event(
        bizStep="https://ref.gs1.org/cbv/BizStep-shipping",
        disposition="https://example.com/disp/q",
        persistentDisposition={"set": ["recalled"], "unset": ["https://ref.gs1.org/cbv/Disp-active"]},
    )
    event["sourceList"][0]["type"] = "https://ref.gs1.org/cbv/SDT-owning_party"
    n = normalize_event(event)
    assert (n.biz_step, n.disposition) == ("shipping", "https://example.com/disp/q")
    assert n.sources[0][0] == "owning_party"
    assert (n.persistent_disposition_set, n.persistent_disposition_unset) == (["recalled"], ["active"])


@pytest.mark.parametrize(
    ("ilmd", "context"),
    [
        ({"cbvmda:lotNumber": "L9", "cbvmda:itemExpirationDate": "2027-01-31"}, None),
        ({"urn:epcglobal:cbv:mda:lotNumber": "L9", "urn:epcglobal:cbv:mda:itemExpirationDate": "2027-01-31"}, None),
        ({"https://ref.gs1.org/cbv/lotNumber": "L9", "https://ref.gs1.org/cbv/itemExpirationDate": "2027-01-31"}, None),
        ({"mda:lotNumber": "L9", "mda:itemExpirationDate": "2027-01-31"}, [{"mda": "urn:epcglobal:cbv:mda:"}]),
    ],
)
def test_lot_and_expiry_are_read_from_ilmd_in_any_spelling(ilmd: dict[str, Any], context: Any) -> None:
    n = normalize_event(commissioning_event(ilmd=ilmd), context)
    assert (n.lot_number, n.expiry_date) == ("L9", date(2027, 1, 31))


def test_an_error_declaration_is_read() -> None:
    event = shipping_event(
        eventID="urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8",
        errorDeclaration={"declarationTime": "2026-11-02T10:00:00+01:00", "reason": "incorrect_data",
                          "correctiveEventIDs": ["urn:uuid:404d95fc-9457-4a51-bd6a-0bba133845a8"]},
    )  # fmt: skip
    n = normalize_event(event)
    assert n.error_declaration == ErrorDeclaration(
        datetime(2026, 11, 2, 9, 0, tzinfo=UTC), "incorrect_data", ("urn:uuid:404d95fc-9457-4a51-bd6a-0bba133845a8",)
    )
    assert n.event_id == "urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8"


def test_urn_and_digital_link_forms_of_an_event_normalise_identically() -> None:
    as_urns = shipping_event()
    as_links = shipping_event(
        epcList=["https://dl.example.com/01/10614141073464/21/2017?17=280630"],
        readPoint={"id": "https://id.gs1.org/414/0614141007776"},
        sourceList=[{"type": "owning_party", "source": "https://example.org/party/417/0614141000005"}],
        destinationList=[{"type": "owning_party", "destination": "https://id.gs1.org/417/4012345000009"}],
    )
    assert normalize_event(as_urns) == normalize_event(as_links)


def test_a_malformed_identifier_or_time_cannot_be_normalised() -> None:
    with pytest.raises(IdentifierError):
        normalize_event(shipping_event(epcList=["https://id.gs1.org/01/10614141073465/21/1"]))
    with pytest.raises(ValueError, match="no UTC offset"):
        normalize_event(shipping_event(eventTime="2026-11-01T08:00:00"))


# -- rendering for queries -------------------------------------------------------------------------------------


def _mixed_event() -> dict[str, Any]:
    return shipping_event(
        epcList=["urn:epc:id:sgtin:0614141.107346.2017", "https://dl.example.com/01/10614141073464/21/2018"],
        quantityList=[{"epcClass": "https://id.gs1.org/01/04012345123456/10/998877", "quantity": 2}],
        readPoint={"id": "https://id.gs1.org/414/0614141007776"},
    )


def _prefix_length(digits: str) -> int | None:
    return 7 if digits.startswith(("0614141", "4012345")) else None


def test_events_render_with_all_identifiers_as_canonical_digital_links() -> None:
    out = to_event_json(_mixed_event(), "Always_GS1_Digital_Link")
    assert out["epcList"] == [SGTIN_2017, SGTIN_2018]
    assert out["readPoint"]["id"] == SGLN
    assert out["sourceList"][0]["source"] == "https://id.gs1.org/417/0614141000005"
    assert out["bizTransactionList"][0]["bizTransaction"] == "urn:epcglobal:cbv:bt:0614141000005:PO-77"


def test_events_render_with_all_identifiers_as_urns_where_the_company_prefix_is_known() -> None:
    out = to_event_json(_mixed_event(), "Always_EPC_URN", _prefix_length)
    assert out["epcList"] == ["urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.2018"]
    assert out["quantityList"][0]["epcClass"] == "urn:epc:class:lgtin:4012345.012345.998877"
    assert out["readPoint"]["id"] == "urn:epc:id:sgln:0614141.00777.0"
    assert out["destinationList"][0]["destination"] == "urn:epc:id:pgln:4012345.00000"


def test_an_unknown_company_prefix_leaves_the_digital_link() -> None:
    out = to_event_json(_mixed_event(), "Always_EPC_URN", lambda _digits: None)
    assert out["epcList"] == ["urn:epc:id:sgtin:0614141.107346.2017", SGTIN_2018]


@pytest.mark.parametrize("epc_format", ["No_Preference", "Never_Translates"])
def test_events_render_as_received_otherwise_and_the_stored_event_is_untouched(epc_format: str) -> None:
    stored = _mixed_event()
    before = copy.deepcopy(stored)
    out = to_event_json(stored, epc_format)
    assert out == before
    to_event_json(stored, "Always_GS1_Digital_Link")
    assert stored == before
