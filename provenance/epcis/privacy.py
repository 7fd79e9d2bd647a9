"""No patient data, ever: refuse events that would carry a patient's identity.

DSCSA tracing stops at the dispenser: a dispensing event needs the dispenser (readPoint /
bizLocation) and the package (epcList), never who received it. The ledger is append-only and kept for
six years or more, so patient data that got in could not be taken out again; it is refused at the door
(422) instead.

What is refused, anywhere in the event (ILMD, extensions at any depth):
* keys whose local name (after the namespace prefix or IRI) is a known personal-data name
  (``patientName``, ``dob``, ``rxNumber``, ``ssn``, ``email``...) or mentions patient / prescription /
  prescriber, compared case-insensitively and ignoring ``_`` and ``-``;
* source/destination and business-transaction types whose local name mentions patient, prescription,
  prescriber, consumer, person or member, and source/destination/transaction values that name patients
  or prescriptions;
* extension and ILMD values that are e-mail addresses or US Social Security numbers.

Standard EPCIS/CBV fields (bizLocation, readPoint, owning_party, location, cbvmda:lotNumber,
itemExpirationDate, countryOfOrigin...) never match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import cbv
from .namespaces import local_name
from .problem import VALIDATION, Problem, pointer

# Local names (lowercase, without _ - .) that only ever carry a person's identity or contact details.
_PERSONAL_NAMES = frozenset({
    # names
    "patientname", "firstname", "lastname", "givenname", "familyname", "surname", "middlename", "fullname",
    "personname", "consumername", "customername", "maidenname", "nickname",
    # birth and demographics
    "dateofbirth", "dob", "birthdate", "birthday", "birthyear", "placeofbirth", "gender", "sex",
    # addresses and contact
    "address", "homeaddress", "residentialaddress", "mailingaddress", "personaladdress", "streetaddress",
    "consumeraddress", "phone", "phonenumber", "telephone", "telephonenumber", "mobile", "mobilenumber",
    "cellphone", "fax", "email", "emailaddress", "mail",
    # identifiers of people
    "patient", "patientid", "person", "personid", "personidentifier", "consumerid", "memberid", "membernumber",
    "member", "subscriberid", "beneficiaryid", "insuranceid", "insurancenumber", "policynumber", "healthplanid",
    "medicaidid", "medicareid", "mbi", "ssn", "socialsecuritynumber", "nationalid", "passportnumber",
    "driverslicense", "driverlicense", "mrn", "medicalrecordnumber", "medicalrecord", "chartnumber",
    # prescriptions and clinical data
    "rx", "rxnumber", "rxno", "rxid", "prescription", "prescriptionnumber", "prescriptionid", "prescriptionno",
    "scriptnumber", "diagnosis", "diagnosiscode", "icd10", "icdcode",
})  # fmt: skip
# Stems that make any key about a patient, a prescription or its prescriber.
_PERSONAL_STEMS = ("patient", "prescription", "prescriber")
# Stems refused in source/destination and business-transaction *types* (vocabulary, so false positives are rare).
_TYPE_STEMS = (*_PERSONAL_STEMS, "consumer", "person", "member")
_TYPE_WORDS = frozenset({"rx", "rxnumber", "dob", "ssn", "mrn"})
_VALUE_STEMS = re.compile(r"patient|prescription|prescriber", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
# Standard fields whose values are identifiers or vocabulary, not free data: values are not scanned there.
_STANDARD_KEYS = frozenset({
    "type", "eventTime", "recordTime", "eventTimeZoneOffset", "eventID", "certificationInfo", "errorDeclaration",
    "epcList", "parentID", "childEPCs", "inputEPCList", "outputEPCList", "quantityList", "childQuantityList",
    "inputQuantityList", "outputQuantityList", "action", "transformationID", "bizStep", "disposition",
    "persistentDisposition", "readPoint", "bizLocation", "bizTransactionList", "sourceList", "destinationList",
    "sensorElementList", "ilmd", "@context",
})  # fmt: skip
# Standard keys inside standard structures (readPoint, quantity elements, sensor data, errorDeclaration).
_NESTED_STANDARD_KEYS = frozenset({
    "id", "epcClass", "quantity", "uom", "set", "unset", "sensorMetadata", "sensorReport", "time", "startTime",
    "endTime", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "bizRules", "exception",
    "microorganism", "chemicalSubstance", "value", "component", "stringValue", "booleanValue", "hexBinaryValue",
    "uriValue", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue", "coordinateReferenceSystem",
    "declarationTime", "reason", "correctiveEventIDs", "type",
})  # fmt: skip
# Standard keys whose values are free text, so could still carry an e-mail address or an SSN.
_FREE_TEXT_KEYS = frozenset({"stringValue", "uriValue"})

_WHY = (
    "This service never stores patient data: DSCSA tracing stops at the dispenser, and the ledger cannot "
    "forget what it was given."
)
_WHAT_TO_DO = (
    "Remove it and send the event again; a dispensing event records the dispenser (readPoint/bizLocation) "
    "and the package (epcList) only."
)


def patient_data_problems(event: dict[str, Any], *, index: int) -> list[Problem]:
    """One 422 problem for every place in the event that would carry patient identity."""
    if not isinstance(event, Mapping):
        return []
    problems: list[Problem] = []
    for key, value in event.items():
        if key in ("sourceList", "destinationList", "bizTransactionList"):
            problems.extend(_typed_list_problems(key, value, index))
        elif key not in _STANDARD_KEYS or key == "ilmd":
            problems.extend(_walk(key, value, (key,), index, scan_values=True))
        elif isinstance(value, (Mapping, list)):
            # Standard structures may hold extensions (readPoint, sensorElementList, errorDeclaration).
            problems.extend(_walk(key, value, (key,), index, scan_values=False))
    return problems


def personal_key_reason(key: str) -> str | None:
    """Why a field name would carry patient data, or None when it is harmless."""
    name = _squash(local_name(key))
    if name in _PERSONAL_NAMES:
        return f"{local_name(key)!r} names personal data"
    stem = next((s for s in _PERSONAL_STEMS if s in name), None)
    return f"{local_name(key)!r} is about a {stem}" if stem else None


def _squash(name: str) -> str:
    return re.sub(r"[_\-.\s]", "", name).lower()


def _walk(key: str, value: Any, path: tuple[object, ...], index: int, *, scan_values: bool) -> list[Problem]:
    """Problems in one field and everything below it; ``scan_values`` once inside free-form data."""
    if key not in _STANDARD_KEYS and key not in _NESTED_STANDARD_KEYS:
        reason = personal_key_reason(key)
        if reason is not None:
            return [_problem(index, path, f"The field {key!r} at {pointer(*path)}: {reason}.")]
    if isinstance(value, Mapping):
        problems: list[Problem] = []
        for child, item in value.items():
            scan = scan_values or child in _FREE_TEXT_KEYS or child not in _NESTED_STANDARD_KEYS
            problems.extend(_walk(child, item, (*path, child), index, scan_values=scan))
        return problems
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _walk(key, item, (*path, i), index, scan_values=scan_values)]
    return _value_problems(value, path, index, scan_values)


def _value_problems(value: Any, path: tuple[object, ...], index: int, scan: bool) -> list[Problem]:
    if not scan or not isinstance(value, str):
        return []
    if _EMAIL.search(value):
        return [
            _problem(index, path, f"The value at {pointer(*path)} is an e-mail address, which identifies a person.")
        ]
    if _SSN.search(value):
        return [_problem(index, path, f"The value at {pointer(*path)} looks like a US Social Security number.")]
    return []


def _typed_list_problems(name: str, entries: Any, index: int) -> list[Problem]:
    if not isinstance(entries, list):
        return []
    field = {"sourceList": "source", "destinationList": "destination", "bizTransactionList": "bizTransaction"}[name]
    kind = "bizTransactionType" if field == "bizTransaction" else "sourceDestType"
    problems: list[Problem] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            continue
        type_ = entry.get("type")
        if isinstance(type_, str) and not cbv.is_standard(type_, kind) and _personal_type(type_):
            problems.append(
                _problem(
                    index,
                    (name, i, "type"),
                    f"The {field} type {type_!r} at {pointer(name, i, 'type')} names a patient, prescription or "
                    "person rather than a trading partner.",
                )
            )
        value = entry.get(field)
        if isinstance(value, str) and _VALUE_STEMS.search(value):
            problems.append(
                _problem(
                    index,
                    (name, i, field),
                    f"The {field} {value!r} at {pointer(name, i, field)} refers to a patient or a prescription.",
                )
            )
        for key, item in entry.items():
            if key not in ("type", field):
                problems.extend(_walk(key, item, (name, i, key), index, scan_values=True))
    return problems


def _personal_type(value: str) -> bool:
    name = _squash(local_name(value))
    return name in _TYPE_WORDS or any(stem in name for stem in _TYPE_STEMS)


def _problem(index: int, path: tuple[object, ...], what: str) -> Problem:
    return Problem(
        status=422,
        type=VALIDATION,
        title="Patient data is not accepted",
        detail=f"{what} {_WHY} {_WHAT_TO_DO}",
        event_index=index,
        field=pointer(*path),
    )
