"""Validation of captured documents: GS1's schema, then GS1 keys, CBV words, times, ILMD, quantities."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import pytest

from provenance.epcis import validation
from provenance.epcis.validation import Problem

from .support import (
    NEGATIVE,
    NOW,
    commissioning_event,
    document,
    document_problems,
    fields_of,
    load,
    problems_of,
    shipping_event,
)


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [p.to_dict() for p in problems]
    return problems[0]


def test_a_valid_commissioning_and_shipping_document_has_no_problems() -> None:
    assert document_problems(document(commissioning_event(), shipping_event())) == []


def test_a_problem_says_where_and_serialises_for_the_api() -> None:
    problem = only(problems_of(commissioning_event(bizStep="teleporting")))
    assert problem.to_dict() == {
        "type": "epcisException:ValidationException",
        "title": problem.title,
        "status": 400,
        "detail": problem.detail,
        "eventIndex": 0,
        "field": "/bizStep",
    }


# -- GS1 identifiers -------------------------------------------------------------------------------------------

BAD_SGTIN = "urn:epc:id:sgtin:0614141.10734.2017"  # company prefix + item reference are 12 digits, not 13
BAD_GTIN_LINK = "https://id.gs1.org/01/10614141073465/21/2017"  # check digit 5 instead of 4
BAD_SSCC = "https://id.gs1.org/00/106141412345678907"
BAD_GLN = "https://id.gs1.org/414/0614141007777"
BAD_PGLN = "https://id.gs1.org/417/4012345000008"


def test_it_refuses_a_gtin_with_a_bad_check_digit() -> None:
    event = commissioning_event(epcList=["urn:epc:id:sgtin:0614141.107346.2017", BAD_GTIN_LINK])
    problem = only(problems_of(event))
    assert (problem.status, problem.event_index, problem.field) == (400, 0, "/epcList/1")
    assert "check digit 5" in problem.detail


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"epcList": [BAD_SGTIN]}, "/epcList/0"),
        ({"readPoint": {"id": BAD_GLN}}, "/readPoint/id"),
        ({"bizLocation": {"id": BAD_GLN}}, "/bizLocation/id"),
        ({"quantityList": [{"epcClass": "urn:epc:class:lgtin:0614141.10734.L1", "quantity": 2}]},
         "/quantityList/0/epcClass"),
    ],
)  # fmt: skip
def test_every_identifier_of_an_object_event_is_checked(change: dict[str, Any], field: str) -> None:
    assert fields_of(problems_of(commissioning_event(**change))) == [field]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sourceList": [{"type": "owning_party", "source": BAD_PGLN}]}, "/sourceList/0/source"),
        ({"destinationList": [{"type": "location", "destination": BAD_GLN}]}, "/destinationList/0/destination"),
    ],
)
def test_sources_and_destinations_are_checked(change: dict[str, Any], field: str) -> None:
    assert fields_of(problems_of(shipping_event(**change))) == [field]


def test_parent_and_children_of_an_aggregation_are_checked() -> None:
    event = {
        "type": "AggregationEvent",
        "eventTime": "2026-11-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "parentID": BAD_SSCC,
        "childEPCs": ["urn:epc:id:sgtin:0614141.107346.1", BAD_GTIN_LINK],
        "childQuantityList": [{"epcClass": "urn:epc:class:lgtin:0614141.10734.L1"}],
        "action": "ADD",
        "bizStep": "packing",
    }
    assert fields_of(problems_of(event)) == ["/childEPCs/1", "/parentID", "/childQuantityList/0/epcClass"]


def test_inputs_and_outputs_of_a_transformation_are_checked() -> None:
    event = {
        "type": "TransformationEvent",
        "eventTime": "2026-11-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "inputEPCList": [BAD_GTIN_LINK],
        "outputEPCList": ["urn:epc:id:sgtin:0614141.107346.1", BAD_SGTIN],
        "inputQuantityList": [{"epcClass": "urn:epc:class:lgtin:0614141.10734.L1", "quantity": 1}],
        "outputQuantityList": [{"epcClass": "urn:epc:class:lgtin:0614141.107346.L2", "quantity": 1}],
        "bizStep": "repackaging",
    }
    assert sorted(fields_of(problems_of(event))) == sorted(
        ["/inputEPCList/0", "/outputEPCList/1", "/inputQuantityList/0/epcClass"]
    )


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"epcList": ["urn:epc:class:lgtin:0614141.107346.L1"]}, "/epcList/0", "names a class"),
        ({"quantityList": [{"epcClass": "urn:epc:id:sgtin:0614141.107346.1"}], "epcList": []},
         "/quantityList/0/epcClass", "names one object"),
        ({"readPoint": {"id": "urn:epc:id:sgtin:0614141.107346.1"}}, "/readPoint/id", "not a location"),
    ],
)  # fmt: skip
def test_identifiers_of_the_wrong_kind_are_refused(change: dict[str, Any], field: str, says: str) -> None:
    problem = only(problems_of(commissioning_event(**change)))
    assert problem.field == field
    assert says in problem.detail


def test_the_same_pack_listed_twice_in_two_forms_is_refused() -> None:
    event = commissioning_event(
        epcList=["urn:epc:id:sgtin:0614141.107346.2017", "https://example.com/01/10614141073464/21/2017"]
    )
    problem = only(problems_of(event))
    assert problem.field == "/epcList/1"
    assert "/epcList/0" in problem.detail


def test_custom_non_gs1_identifiers_are_allowed() -> None:
    assert problems_of(shipping_event(epcList=["https://example.com/assets/pallet-7"])) == []


# -- CBV vocabulary --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bizStep": "urn:epcglobal:cbv:bizstep:shipping"}, "/bizStep"),
        ({"disposition": "lost_in_space"}, "/disposition"),
        ({"bizTransactionList": [{"type": "purchase_order", "bizTransaction": "urn:x:po:1"}]},
         "/bizTransactionList/0/type"),
        ({"sourceList": [{"type": "urn:epcglobal:cbv:sdt:owning_party", "source": "urn:epc:id:pgln:0614141.00000"}]},
         "/sourceList/0/type"),
        ({"destinationList": [{"type": "buyer", "destination": "urn:epc:id:pgln:4012345.00000"}]},
         "/destinationList/0/type"),
        ({"persistentDisposition": {"set": ["recalld"]}}, "/persistentDisposition/set/0"),
        ({"errorDeclaration": {"declarationTime": "2026-11-01T10:00:00Z", "reason": "oops"}},
         "/errorDeclaration/reason"),
    ],
)  # fmt: skip
def test_cbv_values_must_be_standard_bare_words_or_custom_uris(change: dict[str, Any], field: str) -> None:
    problem = only(problems_of(shipping_event(**change)))
    assert (problem.status, problem.field) == (400, field)


def test_the_epcis_1x_urn_form_is_refused_with_the_bare_word_to_send() -> None:
    problem = only(problems_of(shipping_event(bizStep="urn:epcglobal:cbv:bizstep:shipping")))
    assert "send 'shipping'" in problem.detail


def test_full_cbv_iris_and_custom_uris_are_accepted() -> None:
    event = shipping_event(bizStep="https://ref.gs1.org/cbv/BizStep-shipping",
                           disposition="https://example.com/disp/quarantined")  # fmt: skip
    assert problems_of(event) == []


def test_an_epcis_1x_document_is_refused_field_by_field() -> None:
    problems = document_problems(load(NEGATIVE / "event_with_identical_hash_id_7.json"))
    fields = set(fields_of(problems))
    assert {"/bizStep", "/disposition", "/bizTransactionList/0/type", "/sourceList/0/type"} <= fields
    assert all(p.status == 400 and p.event_index == 0 for p in problems)


# -- times -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["+15:00", "-5:00", "+14:30", "+0500", "Z", "+05:60"])
def test_the_time_zone_offset_must_be_plus_or_minus_hh_mm_within_14_hours(offset: str) -> None:
    problem = only(problems_of(commissioning_event(eventTimeZoneOffset=offset)))
    assert (problem.status, problem.field) == (400, "/eventTimeZoneOffset")


@pytest.mark.parametrize("offset", ["+14:00", "-14:00", "+05:30", "-00:00"])
def test_offsets_up_to_14_hours_are_accepted(offset: str) -> None:
    assert problems_of(commissioning_event(eventTimeZoneOffset=offset)) == []


def test_the_event_time_must_carry_a_utc_offset() -> None:
    problem = only(problems_of(commissioning_event(eventTime="2026-11-01T08:00:00.000")))
    assert (problem.status, problem.field) == (400, "/eventTime")
    assert "no UTC offset" in problem.detail


def test_an_event_time_that_is_not_a_time_is_refused() -> None:
    problem = only(problems_of(commissioning_event(eventTime="yesterday")))
    assert (problem.status, problem.field) == (400, "/eventTime")


def test_an_event_later_than_now_plus_the_allowed_skew_is_refused() -> None:
    later = (NOW + timedelta(minutes=6)).isoformat()
    problem = only(problems_of(commissioning_event(eventTime=later)))
    assert (problem.status, problem.field) == (422, "/eventTime")
    assert problems_of(commissioning_event(eventTime=(NOW + timedelta(minutes=4)).isoformat())) == []


def test_an_error_declaration_cannot_be_declared_in_the_future() -> None:
    later = (NOW + timedelta(hours=1)).isoformat()
    event = shipping_event(errorDeclaration={"declarationTime": later, "reason": "did_not_occur"})
    assert fields_of(problems_of(event)) == ["/errorDeclaration/declarationTime"]


# -- ILMD ------------------------------------------------------------------------------------------------------


def test_ilmd_is_refused_on_an_observe_event() -> None:
    event = shipping_event(ilmd={"cbvmda:lotNumber": "L1"})
    problem = only(problems_of(event))
    assert (problem.status, problem.field) == (400, "/ilmd")
    assert "action ADD" in problem.detail


def test_ilmd_is_refused_on_an_aggregation_event() -> None:
    event = {
        "type": "AggregationEvent",
        "eventTime": "2026-11-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "parentID": "urn:epc:id:sscc:0614141.1234567890",
        "childEPCs": ["urn:epc:id:sgtin:0614141.107346.1"],
        "action": "ADD",
        "ilmd": {"cbvmda:lotNumber": "L1"},
    }
    assert fields_of(problems_of(event)) == ["/ilmd"]


def test_ilmd_is_accepted_on_a_transformation_event() -> None:
    event = {
        "type": "TransformationEvent",
        "eventTime": "2026-11-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "inputEPCList": ["urn:epc:id:sgtin:0614141.107346.1"],
        "outputEPCList": ["urn:epc:id:sgtin:0614141.107346.2"],
        "ilmd": {"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2028-06-30"},
    }
    assert problems_of(event) == []


@pytest.mark.parametrize(
    ("ilmd", "field"),
    [
        ({"cbvmda:lotNumber": "L" * 21}, "/ilmd/cbvmda:lotNumber"),
        ({"cbvmda:lotNumber": "lot é"}, "/ilmd/cbvmda:lotNumber"),
        ({"cbvmda:lotNumber": 12}, "/ilmd/cbvmda:lotNumber"),
        ({"cbvmda:itemExpirationDate": "2028-6-30"}, "/ilmd/cbvmda:itemExpirationDate"),
        ({"cbvmda:itemExpirationDate": "2028-02-30"}, "/ilmd/cbvmda:itemExpirationDate"),
        ({"cbvmda:itemExpirationDate": "280630"}, "/ilmd/cbvmda:itemExpirationDate"),
        ({"urn:epcglobal:cbv:mda:itemExpirationDate": "30/06/2028"}, "/ilmd/urn:epcglobal:cbv:mda:itemExpirationDate"),
    ],
)
def test_lot_numbers_and_expiry_dates_must_be_well_formed(ilmd: dict[str, Any], field: str) -> None:
    problem = only(problems_of(commissioning_event(ilmd=ilmd)))
    assert (problem.status, problem.field) == (400, field)


# -- quantities, extensions, event types -----------------------------------------------------------------------


def test_a_quantity_must_be_positive() -> None:
    event = commissioning_event(epcList=[], quantityList=[{"epcClass": "urn:epc:class:lgtin:0614141.107346.L1",
                                                          "quantity": 0, "uom": "EA"}])  # fmt: skip
    problem = only(problems_of(event))
    assert (problem.status, problem.field) == (422, "/quantityList/0/quantity")


def test_an_extension_field_needs_a_declared_namespace_prefix() -> None:
    problem = only(problems_of(shipping_event(**{"acme:note": "x"})))
    assert (problem.status, problem.field) == (400, "/acme:note")


def test_a_field_that_is_not_epcis_and_not_namespaced_is_refused() -> None:
    problem = only(problems_of(shipping_event(note="x")))
    assert (problem.field, problem.status) == ("/note", 400)
    assert "namespaced" in problem.detail


def test_an_unknown_action_is_refused_by_the_schema() -> None:
    problem = only(problems_of(shipping_event(action="MOVE")))
    assert (problem.field, problem.status) == ("/action", 400)


def test_a_missing_required_field_is_named() -> None:
    event = shipping_event()
    del event["eventTimeZoneOffset"]
    problem = only(problems_of(event))
    assert problem.field == "/eventTimeZoneOffset"
    assert "missing" in problem.detail


def test_an_object_event_about_nothing_is_refused() -> None:
    event = shipping_event()
    del event["epcList"]
    problem = only(problems_of(event))
    assert "epcList" in problem.detail
    assert "quantityList" in problem.detail


def test_an_identifier_that_is_not_a_uri_is_refused() -> None:
    problem = only(problems_of(shipping_event(epcList=["not an epc"])))
    assert (problem.field, problem.status) == ("/epcList/0", 400)


def test_only_the_five_epcis_event_types_are_recorded() -> None:
    problem = only(problems_of({"type": "example:CustomEvent", "eventTime": "2026-11-01T08:00:00Z",
                                "eventTimeZoneOffset": "+00:00"}))  # fmt: skip
    assert problem.field == "/type"


# -- documents -------------------------------------------------------------------------------------------------


def test_a_body_that_is_not_an_object_gets_one_clear_problem() -> None:
    problem = only(document_problems([shipping_event()]))
    assert (problem.status, problem.event_index) == (400, None)


def test_a_bare_event_gets_one_problem_pointing_to_the_right_endpoint() -> None:
    problem = only(document_problems(shipping_event()))
    assert problem.field == "/type"
    assert "/events" in problem.detail


def test_a_document_of_another_type_gets_one_problem() -> None:
    assert only(document_problems({"type": "EPCISMasterDataDocument"})).event_index is None


def test_too_many_events_is_a_413_capture_limit_problem() -> None:
    problem = only(document_problems(document(*[shipping_event()] * 3), max_events=2))
    assert (problem.status, problem.type) == (413, "epcisException:CaptureLimitExceededException")
    assert problem.field == "/epcisBody/eventList"


def test_header_problems_have_no_event_index() -> None:
    doc = document(shipping_event())
    doc["schemaVersion"] = 2.0
    problem = only(document_problems(doc))
    assert (problem.event_index, problem.field) == (None, "/schemaVersion")


def test_problems_carry_the_index_of_their_event() -> None:
    doc = document(shipping_event(), shipping_event(bizStep="teleporting"), shipping_event(action="MOVE"))
    assert [(p.event_index, p.field) for p in document_problems(doc)] == [(1, "/bizStep"), (2, "/action")]


def test_a_query_document_is_accepted_and_its_events_are_checked() -> None:
    doc = {
        "@context": document()["@context"],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T10:00:00Z",
        "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery",
                                       "resultsBody": {"eventList": [shipping_event(disposition="gone")]}}},
    }  # fmt: skip
    assert [(p.event_index, p.field) for p in document_problems(doc)] == [(0, "/disposition")]


# -- the two schema engines ------------------------------------------------------------------------------------

BROKEN_EVENTS = [
    shipping_event(action="MOVE"),
    shipping_event(epcList=["not an epc"], note="x"),
    shipping_event(eventTime="2026-11-01T08:00:00", eventTimeZoneOffset="-5:00"),
    shipping_event(readPoint={}, bizStep="teleporting"),
    shipping_event(ilmd={"lot": "L1"}),
    commissioning_event(quantityList=[{"epcClass": "urn:x:y", "quantity": "1", "bar": 2}]),
]


def test_the_pure_python_schema_engine_finds_the_same_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = [sorted((p.field or "", p.status) for p in problems_of(e)) for e in BROKEN_EVENTS]
    monkeypatch.setitem(sys.modules, "jsonschema_rs", None)  # the import fails: the fallback engine is used
    fallback = validation._Schema()
    assert fallback.engine == "jsonschema"
    monkeypatch.setattr(validation, "schema", lambda: fallback)
    slow = [sorted((p.field or "", p.status) for p in problems_of(e)) for e in BROKEN_EVENTS]
    assert slow == fast


def test_an_ilmd_field_needs_a_declared_namespace_prefix_too() -> None:
    event = commissioning_event(ilmd={"cbvmda:lotNumber": "L1", "acme:grade": "A"})
    problem = only(problems_of(event))
    assert problem.field == "/ilmd/acme:grade"


def test_absolute_iris_need_no_prefix() -> None:
    event = shipping_event(**{"urn:example:epcis:note": "x", "https://ns.example.com/epcis/other": "y"})
    assert problems_of(event) == []
