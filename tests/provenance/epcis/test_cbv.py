"""CBV 2.0 vocabularies: bare words in, bare words stored, EPCIS 1.x URNs and unknown words refused."""

from __future__ import annotations

import json

import pytest

from provenance.epcis.cbv import (
    BIZ_STEPS,
    BIZ_TRANSACTION_TYPES,
    DISPOSITIONS,
    ERROR_REASONS,
    SOURCE_DEST_TYPES,
    VocabularyError,
    expand_vocab,
    normalize_vocab,
    validate_vocab,
    vocab_error,
)
from provenance.epcis.validation import schema

from .support import FIXTURES


def _schema_enum(definition: str) -> set[str]:
    text = (FIXTURES.parents[2] / "provenance" / "epcis" / "schema" / "EPCIS-JSON-Schema.json").read_text()
    any_of = json.loads(text)["definitions"][definition]["anyOf"]
    return next(set(branch["enum"]) for branch in any_of if "enum" in branch)


@pytest.mark.parametrize(
    ("words", "definition"),
    [(BIZ_STEPS, "bizStep"), (DISPOSITIONS, "disposition"), (SOURCE_DEST_TYPES, "source-dest-type"),
     (BIZ_TRANSACTION_TYPES, "bizTransaction-type"), (ERROR_REASONS, "error-reason")],
)  # fmt: skip
def test_the_vocabularies_are_exactly_the_schema_enums(words: frozenset[str], definition: str) -> None:
    assert set(words) == _schema_enum(definition)


def test_the_schema_is_loaded_from_package_data() -> None:
    assert schema().engine in ("jsonschema-rs", "jsonschema")


@pytest.mark.parametrize(
    ("value", "kind", "stored"),
    [
        ("shipping", "bizStep", "shipping"),
        ("https://ref.gs1.org/cbv/BizStep-shipping", "bizStep", "shipping"),
        ("urn:epcglobal:cbv:bizstep:shipping", "bizStep", "shipping"),
        ("https://ref.gs1.org/cbv/Disp-in_transit", "disposition", "in_transit"),
        ("https://ref.gs1.org/cbv/SDT-owning_party", "sourceDestType", "owning_party"),
        ("https://ref.gs1.org/cbv/BTT-po", "bizTransactionType", "po"),
        ("https://example.com/vocab/exampling", "bizStep", "https://example.com/vocab/exampling"),
        ("teleporting", "bizStep", "teleporting"),
    ],
)
def test_normalize_vocab_stores_standard_terms_as_bare_words_and_custom_uris_as_they_are(
    value: str, kind: str, stored: str
) -> None:
    assert normalize_vocab(value, kind) == stored


def test_a_bare_word_expands_to_its_cbv_iri_for_the_event_hash() -> None:
    assert expand_vocab("shipping", "bizStep") == "https://ref.gs1.org/cbv/BizStep-shipping"
    assert expand_vocab("owning_party", "sourceDestType") == "https://ref.gs1.org/cbv/SDT-owning_party"
    assert expand_vocab("https://example.com/x", "bizStep") == "https://example.com/x"


def test_it_refuses_the_epcis_1x_urn_form_and_says_which_bare_word_to_send() -> None:
    message = vocab_error("urn:epcglobal:cbv:bizstep:shipping", "bizStep")
    assert message is not None
    assert "EPCIS 1.x" in message
    assert "send 'shipping'" in message


def test_it_refuses_unknown_bare_words_and_suggests_the_nearest_term() -> None:
    message = vocab_error("Shipping", "bizStep")
    assert message is not None
    assert "Did you mean 'shipping'?" in message
    assert vocab_error("lost_in_space", "disposition") is not None


def test_it_refuses_terms_that_are_not_in_gs1s_namespaces_vocabulary() -> None:
    assert vocab_error("https://ref.gs1.org/cbv/BizStep-teleporting", "bizStep") is not None
    assert vocab_error("http://ns.gs1.org/cbv/BizStep-shipping", "bizStep") is not None


def test_it_accepts_standard_terms_in_both_json_ld_spellings_and_custom_uris() -> None:
    assert vocab_error("shipping", "bizStep") is None
    assert vocab_error("https://ref.gs1.org/cbv/BizStep-shipping", "bizStep") is None
    assert vocab_error("https://example.com/vocab/exampling", "bizStep") is None
    assert validate_vocab("https://ref.gs1.org/cbv/Disp-recalled", "disposition") == "recalled"
    with pytest.raises(VocabularyError):
        validate_vocab("", "disposition")
