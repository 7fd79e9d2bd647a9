"""GS1's own EPCIS 2.0 example documents: valid, readable, and their identifiers round-trip."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from provenance.epcis.eventhash import event_hash
from provenance.epcis.identifiers import CANONICAL_HOST, canonical, to_urn
from provenance.epcis.normalize import normalize_event

from .support import GS1_EXAMPLES, all_events, document_problems, example_id, gs1_example_files, identifier_values, load

EXAMPLES = [p for p in gs1_example_files() if load(p)["type"] == "EPCISDocument"]
QUERY_DOCUMENT = GS1_EXAMPLES / "EPCISQueryDocument.jsonld"


def test_all_thirty_examples_are_here() -> None:
    assert len(EXAMPLES) == 29
    assert QUERY_DOCUMENT.exists()


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_every_gs1_example_validates_clean(path: Path) -> None:
    assert [p.to_dict() for p in document_problems(load(path))] == []


def test_the_gs1_query_document_validates_clean_too() -> None:
    assert document_problems(load(QUERY_DOCUMENT)) == []


@pytest.mark.parametrize("path", [*EXAMPLES, QUERY_DOCUMENT], ids=example_id)
def test_every_gs1_example_event_normalises(path: Path) -> None:
    doc = load(path)
    for event in all_events(doc):
        normalized = normalize_event(event, doc["@context"])
        assert normalized.event_type == event["type"]
        assert all(value.startswith(CANONICAL_HOST) or "://" in value or ":" in value for _r, value in normalized.epcs)


def _urn_company_prefix_length(urn: str) -> int:
    return len(urn.split(":")[4].split(".")[0])


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_every_identifier_round_trips_between_urn_and_digital_link(path: Path) -> None:
    checked = 0
    for event in all_events(load(path)):
        for value in identifier_values(event):
            link = canonical(value)
            if value.startswith("urn:epc:"):
                assert to_urn(link, _urn_company_prefix_length(value)) == value
                checked += 1
            elif link.startswith(CANONICAL_HOST):
                assert canonical(to_urn(link, 7)) == link
                checked += 1
    assert checked > 0


def _as_digital_links(value: Any, host: str) -> Any:
    """The same data with every EPC URN written as a Digital Link on another resolver."""
    if isinstance(value, dict):
        return {k: _as_digital_links(v, host) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_digital_links(v, host) for v in value]
    if isinstance(value, str) and value.startswith("urn:epc:"):
        return host + canonical(value)[len(CANONICAL_HOST) :]
    return value


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_both_identifier_forms_normalise_and_hash_the_same(path: Path) -> None:
    doc = load(path)
    rewritten = _as_digital_links(copy.deepcopy(doc), "https://resolver.example.com/dl")
    for original, linked in zip(all_events(doc), all_events(rewritten), strict=True):
        assert normalize_event(original, doc["@context"]) == normalize_event(linked, doc["@context"])
        assert event_hash(original, doc["@context"]) == event_hash(linked, doc["@context"])
