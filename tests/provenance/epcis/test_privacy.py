"""No patient data: refuse fields that would identify a patient, never refuse ordinary CBV data."""

from __future__ import annotations

from typing import Any

import pytest

from provenance.epcis.privacy import patient_data_problems

from .support import all_events, commissioning_event, gs1_example_files, load, shipping_event


def dispensing_event(**extra: Any) -> dict[str, Any]:
    return shipping_event(bizStep="dispensing", disposition="dispensed", **extra)


@pytest.mark.parametrize(
    "key",
    [
        "example:patientName", "example:PatientName", "example:patient_id", "example:PATIENT-ID",
        "example:dateOfBirth", "example:dob", "example:birthDate", "example:rxNumber", "example:RX_NUMBER",
        "example:prescriptionNumber", "example:ssn", "example:mrn", "example:medicalRecordNumber",
        "example:address", "example:phone", "example:email", "example:firstName", "example:lastName",
        "example:memberId", "example:prescriberNPI", "https://ns.example.com/epcis/patientName",
        "https://ns.example.com/epcis#dob",
    ],
)  # fmt: skip
def test_it_refuses_extension_fields_named_after_patient_data(key: str) -> None:
    [problem] = patient_data_problems(dispensing_event(**{key: "x"}), index=3)
    assert (problem.status, problem.event_index, problem.field) == (422, 3, "/" + key.replace("/", "~1"))
    assert "never stores patient data" in problem.detail
    assert "dispenser" in problem.detail
    assert "Remove it" in problem.detail


def test_it_finds_patient_data_nested_at_any_depth() -> None:
    event = dispensing_event(**{"example:dispense": {"example:details": [{"example:lastName": "Doe"}]}})
    [problem] = patient_data_problems(event, index=0)
    assert problem.field == "/example:dispense/example:details/0/example:lastName"


def test_it_refuses_patient_data_in_ilmd() -> None:
    event = commissioning_event(ilmd={"cbvmda:lotNumber": "L1", "example:patientId": "P-1"})
    [problem] = patient_data_problems(event, index=0)
    assert problem.field == "/ilmd/example:patientId"


def test_it_refuses_extensions_inside_standard_structures() -> None:
    event = dispensing_event(readPoint={"id": "urn:epc:id:sgln:0614141.00777.0", "example:patientRoom": "12"})
    [problem] = patient_data_problems(event, index=0)
    assert problem.field == "/readPoint/example:patientRoom"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"destinationList": [{"type": "https://example.com/sdt/patient", "destination": "urn:example:p:1"}]},
         "/destinationList/0/type"),
        ({"destinationList": [{"type": "example:consumer", "destination": "urn:example:c:1"}]},
         "/destinationList/0/type"),
        ({"sourceList": [{"type": "owning_party", "source": "https://pharmacy.example.com/patients/42"}]},
         "/sourceList/0/source"),
        ({"bizTransactionList": [{"type": "https://example.com/btt/prescription", "bizTransaction": "urn:x:1"}]},
         "/bizTransactionList/0/type"),
        ({"bizTransactionList": [{"type": "example:rx", "bizTransaction": "urn:x:1"}]},
         "/bizTransactionList/0/type"),
        ({"bizTransactionList": [{"type": "po", "bizTransaction": "urn:example:prescription:12345"}]},
         "/bizTransactionList/0/bizTransaction"),
    ],
)  # fmt: skip
def test_it_refuses_patient_and_prescription_types_and_values(change: dict[str, Any], field: str) -> None:
    [problem] = patient_data_problems(dispensing_event(**change), index=0)
    assert (problem.status, problem.field) == (422, field)


@pytest.mark.parametrize("value", ["jane.doe@example.com", "SSN 123-45-6789"])
def test_it_refuses_e_mail_addresses_and_social_security_numbers_in_extension_values(value: str) -> None:
    [problem] = patient_data_problems(dispensing_event(**{"example:note": value}), index=0)
    assert problem.field == "/example:note"


def test_a_dispensing_event_with_only_dispenser_and_package_is_accepted() -> None:
    assert patient_data_problems(dispensing_event(), index=0) == []


@pytest.mark.parametrize(
    "extra",
    [
        {"ilmd": {"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2028-06-30",
                  "cbvmda:countryOfOrigin": "US", "cbvmda:bestBeforeDate": "2028-01-01"}},
        {"sourceList": [{"type": "location", "source": "urn:epc:id:sgln:0614141.00777.0"},
                        {"type": "possessing_party", "source": "urn:epc:id:pgln:0614141.00000"}]},
        {"example:shipToAddressGLN": "urn:epc:id:sgln:0614141.00777.0", "example:customerNumber": "C-1"},
        {"example:storageTemperature": "2-8C", "example:consumerProductVariant": "V1"},
        {"bizTransactionList": [{"type": "desadv", "bizTransaction": "urn:epcglobal:cbv:bt:0614141000005:ASN-1"}]},
    ],
)  # fmt: skip
def test_ordinary_cbv_and_business_fields_are_not_mistaken_for_patient_data(extra: dict[str, Any]) -> None:
    assert patient_data_problems(commissioning_event(**extra), index=0) == []


@pytest.mark.parametrize("path", gs1_example_files(), ids=lambda p: p.name)
def test_no_gs1_example_event_is_mistaken_for_patient_data(path: Any) -> None:
    for index, event in enumerate(all_events(load(path))):
        assert patient_data_problems(event, index=index) == []
