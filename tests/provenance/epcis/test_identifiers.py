"""GS1 identifiers: EPC URNs and Digital Links parse, validate and convert both ways."""

from __future__ import annotations

import pytest

from provenance.epcis.identifiers import (
    IdentifierError,
    canonical,
    gln_of,
    gs1_check_digit,
    gtin_of,
    has_valid_check_digit,
    is_gs1_identifier,
    lot_of,
    ndc_from_gtin,
    parse,
    serial_of,
    to_urn,
    to_urn_with,
)

from .support import NDC_GTIN

# (EPC URN, canonical Digital Link, GS1 Company Prefix length): one row per scheme, from GS1's examples.
PAIRS = [
    ("urn:epc:id:sgtin:0614141.107346.2018", "https://id.gs1.org/01/10614141073464/21/2018", 7),
    ("urn:epc:class:lgtin:4012345.012345.998877", "https://id.gs1.org/01/04012345123456/10/998877", 7),
    ("urn:epc:idpat:sgtin:4012345.098765.*", "https://id.gs1.org/01/04012345987652", 7),
    ("urn:epc:id:sscc:0614141.1234567890", "https://id.gs1.org/00/106141412345678908", 7),
    ("urn:epc:id:sgln:0614141.00777.0", "https://id.gs1.org/414/0614141007776", 7),
    ("urn:epc:id:sgln:4012345.00011.987", "https://id.gs1.org/414/4012345000115/254/987", 7),
    ("urn:epc:id:pgln:4012345.00000", "https://id.gs1.org/417/4012345000009", 7),
    ("urn:epc:id:grai:4012345.66666.87", "https://id.gs1.org/8003/0401234566666387", 7),
    ("urn:epc:idpat:grai:4012345.66666.*", "https://id.gs1.org/8003/04012345666663", 7),
    ("urn:epc:id:giai:4012345.AAbb", "https://id.gs1.org/8004/4012345AAbb", 7),
    ("urn:epc:id:gsrn:4012345.9876540000", "https://id.gs1.org/8018/401234598765400000", 7),
    ("urn:epc:id:gsrnp:4012345.0000098765", "https://id.gs1.org/8017/401234500000987658", 7),
    ("urn:epc:id:gdti:4012345.55555.98", "https://id.gs1.org/253/401234555555498", 7),
    ("urn:epc:idpat:gdti:4012345.55555.*", "https://id.gs1.org/253/4012345555554", 7),
    ("urn:epc:id:cpi:4012345.ABC.123", "https://id.gs1.org/8010/4012345ABC/8011/123", 7),
    ("urn:epc:idpat:cpi:4012345.ABC.*", "https://id.gs1.org/8010/4012345ABC", 7),
    ("urn:epc:id:sgcn:4012345.99999.44", "https://id.gs1.org/255/401234599999044", 7),
    ("urn:epc:idpat:sgcn:4012345.99999.*", "https://id.gs1.org/255/4012345999990", 7),
    ("urn:epc:id:ginc:4012345.333", "https://id.gs1.org/401/4012345333", 7),
    ("urn:epc:id:gsin:4012345.999987654", "https://id.gs1.org/402/40123459999876541", 7),
    ("urn:epc:id:itip:4012345.012345.01.02.999", "https://id.gs1.org/8006/040123451234560102/21/999", 7),
    ("urn:epc:idpat:itip:4012345.012345.01.02.*", "https://id.gs1.org/8006/040123451234560102", 7),
    ("urn:epc:id:upui:4012345.012345.AB12", "https://id.gs1.org/01/04012345123456/235/AB12", 7),
    ("urn:epc:id:sgtin:061414.0107346.7", "https://id.gs1.org/01/00614141073467/21/7", 6),
    ("urn:epc:id:sgtin:061414100734.6.1", "https://id.gs1.org/01/60614141007341/21/1", 12),
]


@pytest.mark.parametrize(("urn", "link", "_length"), PAIRS, ids=[p[0] for p in PAIRS])
def test_an_epc_urn_converts_to_its_canonical_digital_link(urn: str, link: str, _length: int) -> None:
    assert canonical(urn) == link


@pytest.mark.parametrize(("urn", "link", "length"), PAIRS, ids=[p[0] for p in PAIRS])
def test_a_canonical_digital_link_converts_back_to_the_same_urn(urn: str, link: str, length: int) -> None:
    assert to_urn(link, length) == urn


@pytest.mark.parametrize(("urn", "link", "_length"), PAIRS, ids=[p[0] for p in PAIRS])
def test_the_canonical_form_is_a_fixed_point(urn: str, link: str, _length: int) -> None:
    assert canonical(link) == link


@pytest.mark.parametrize(
    "written",
    [
        "https://id.gs1.org/01/10614141073464/21/2018",
        "http://id.gs1.org/01/10614141073464/21/2018",
        "https://id.gs1.de/01/10614141073464/21/2018",
        "https://resolver.example.com/some/prefix/01/10614141073464/21/2018",
        "https://id.gs1.org/01/10614141073464/21/2018?linkType=gs1:pip",
        "https://id.gs1.org/01/10614141073464/21/2018/",
        "https://id.gs1.org/01/10614141073464/10/LOT7/21/2018",
        "https://id.gs1.org/01/10614141073464/22/V1/10/LOT7/21/2018",
        "https://example.com/gtin/10614141073464/ser/2018",
        "urn:epc:id:sgtin:0614141.107346.2018",
        "URN:EPC:ID:SGTIN:0614141.107346.2018",
    ],
)
def test_every_way_of_writing_one_pack_gives_one_canonical_string(written: str) -> None:
    assert canonical(written) == "https://id.gs1.org/01/10614141073464/21/2018"


@pytest.mark.parametrize(
    ("gtin", "padded"),
    [("95060001343", None), ("12345670", "00000012345670"), ("614141073467", "00614141073467"),
     ("0614141073467", "00614141073467"), ("00614141073467", "00614141073467")],
)  # fmt: skip
def test_a_gtin_in_a_digital_link_is_always_fourteen_digits(gtin: str, padded: str | None) -> None:
    if padded is None:
        with pytest.raises(IdentifierError):
            canonical(f"https://id.gs1.org/01/{gtin}")
    else:
        assert canonical(f"https://id.gs1.org/01/{gtin}") == f"https://id.gs1.org/01/{padded}"


def test_serials_with_special_characters_are_percent_encoded_the_same_way_from_both_forms() -> None:
    from_urn = canonical("urn:epc:id:sgtin:0614141.107346.A%2FB!(c)")
    from_link = canonical("https://example.com/01/10614141073464/21/A%2FB!(c)")
    assert from_urn == from_link == "https://id.gs1.org/01/10614141073464/21/A%2FB%21%28c%29"
    assert serial_of(from_urn) == "A/B!(c)"
    assert to_urn(from_urn, 7) == "urn:epc:id:sgtin:0614141.107346.A%2FB!(c)"


def test_it_refuses_a_gtin_with_a_bad_check_digit() -> None:
    with pytest.raises(IdentifierError) as raised:
        canonical("https://id.gs1.org/01/10614141073465/21/2018")
    message = str(raised.value)
    assert "check digit 5" in message
    assert "give 4" in message
    assert "Re-read" in message


@pytest.mark.parametrize(
    "bad",
    [
        "https://id.gs1.org/00/106141412345678907",  # SSCC check digit
        "https://id.gs1.org/414/0614141007777",  # GLN check digit
        "https://id.gs1.org/417/4012345000008",  # PGLN check digit
        "https://example.com/01/10614141073465",  # a custom host does not excuse a bad check digit
    ],
)
def test_it_refuses_sscc_gln_and_pgln_with_a_bad_check_digit(bad: str) -> None:
    with pytest.raises(IdentifierError, match="check digit"):
        canonical(bad)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("urn:epc:id:sgtin:0614141.107346", "is not of the form"),
        ("urn:epc:id:sgtin:0614141.10734.1", "together 13"),
        ("urn:epc:id:sgtin:06141.1073461.1", "6 to 12"),
        ("urn:epc:id:sgtin:0614141.107346.a b", "percent-encode"),
        ("urn:epc:id:sgtin:0614141.107346.123456789012345678901", "1 to 20 characters"),
        ("urn:epc:id:sscc:0614141.123", "together 17"),
        ("urn:epc:id:frobnicator:0614141.1", "not a GS1 EPC scheme"),
        ("urn:epc:idpat:sgtin:0614141.*.*", "every item of a company"),
        ("https://id.gs1.org/01/123/21/1", "not a GTIN"),
        ("https://id.gs1.org/21/2018/01/10614141073464", "must start with the GS1 key"),
        ("https://id.gs1.org/01/10614141073464/17/280630", "not allowed after AI 01"),
        ("https://id.gs1.org/01/10614141073464/21/2018/10/LOT7", "not allowed after AI 01"),
        ("https://id.gs1.org/product/123", "no GS1 primary key"),
        ("https://id.gs1.org/01/10614141073464/21/%C3%A9", "character set 82"),
        ("https://id.gs1.org/414/\u0660\u0666\u0661\u0664\u0661\u0664\u0661\u0660\u0660\u0667\u0667\u0667\u0666",
         "not a GLN"),
    ],
)  # fmt: skip
def test_malformed_gs1_identifiers_are_refused_with_a_reason(bad: str, says: str) -> None:
    with pytest.raises(IdentifierError, match=says):
        canonical(bad)


@pytest.mark.parametrize(
    "other",
    [
        "http://transaction.acme.com/po/12345678",
        "urn:epcglobal:cbv:bt:0614141073467:1152",
        "geo:47.506694,11.104301",
        "urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8",
        "http://example.com/2023/01/15/report",
        "https://example.com/assets/8004/abc",
        "urn:epc:id:gid:95100000.12345.400",
        "ni:///sha-256;abc?ver=CBV2.0",
    ],
)
def test_non_gs1_uris_pass_through_unchanged(other: str) -> None:
    assert canonical(other) == other
    assert to_urn(other, 7) == other


def test_it_tells_gs1_identifiers_from_other_uris() -> None:
    assert is_gs1_identifier("urn:epc:id:sgtin:0614141.107346.2018")
    assert is_gs1_identifier("https://example.com/01/10614141073464/21/2018")
    assert is_gs1_identifier("urn:epc:id:sgtin:broken")  # meant as a GS1 key, so canonical() explains what is wrong
    assert is_gs1_identifier("https://id.gs1.org/whatever")
    assert not is_gs1_identifier("http://transaction.acme.com/po/12345678")
    assert not is_gs1_identifier("urn:epc:id:gid:95100000.12345.400")
    assert not is_gs1_identifier("urn:epcglobal:cbv:bt:0614141073467:1152")


def test_helpers_read_the_parts_of_canonical_identifiers() -> None:
    sgtin = "https://id.gs1.org/01/10614141073464/21/2018"
    lot = "https://id.gs1.org/01/04012345123456/10/998877"
    assert gtin_of(sgtin) == "10614141073464"
    assert serial_of(sgtin) == "2018"
    assert lot_of(sgtin) is None
    assert gtin_of(lot) == "04012345123456"
    assert lot_of(lot) == "998877"
    assert serial_of(lot) is None
    assert gtin_of("https://id.gs1.org/00/106141412345678908") is None
    assert gln_of("https://id.gs1.org/414/4012345000115/254/987") == "4012345000115"
    assert gln_of("https://id.gs1.org/417/4012345000009") == "4012345000009"
    assert gln_of("urn:epc:id:sgln:0614141.00777.0") == "0614141007776"
    assert gln_of(sgtin) is None
    assert gtin_of("http://example.com/x") is None
    assert gln_of("http://example.com/x") is None


def test_the_ndc_is_read_from_an_ndc_based_gtin() -> None:
    assert ndc_from_gtin(NDC_GTIN) == "0045012345"
    case = "5" + NDC_GTIN[1:-1]
    assert ndc_from_gtin(case + str(gs1_check_digit(case))) == "0045012345"  # a case: indicator 5, same NDC


def test_a_gtin_without_the_us_ndc_prefix_has_no_ndc() -> None:
    with pytest.raises(IdentifierError, match="does not carry a US NDC"):
        ndc_from_gtin("10614141073464")
    with pytest.raises(IdentifierError, match="check digit"):
        ndc_from_gtin(NDC_GTIN[:-1] + str((int(NDC_GTIN[-1]) + 1) % 10))


def test_an_identifier_error_is_a_value_error() -> None:
    assert issubclass(IdentifierError, ValueError)


def test_check_digits_follow_the_gs1_mod_10_rule() -> None:
    assert gs1_check_digit("1061414107346") == 4
    assert gs1_check_digit("10614141234567890") == 8
    assert has_valid_check_digit("9506000134307")
    assert not has_valid_check_digit("9506000134308")
    assert not has_valid_check_digit("\u0669\u0665\u0660\u0666")  # other scripts' digits are not digits here
    with pytest.raises(ValueError):
        gs1_check_digit("12a4")


def test_a_urn_needs_a_plausible_company_prefix_length() -> None:
    with pytest.raises(IdentifierError, match="6 to 12 digits"):
        to_urn("https://id.gs1.org/01/10614141073464/21/2018", 5)


def test_a_lookup_that_knows_no_prefix_leaves_the_digital_link() -> None:
    link = "https://id.gs1.org/01/10614141073464/21/2018"
    assert to_urn_with(link, lambda _digits: None) == link
    assert to_urn_with(link, lambda digits: 7 if digits.startswith("0614141") else None) == (
        "urn:epc:id:sgtin:0614141.107346.2018"
    )


def test_the_parsed_identifier_knows_its_scheme_and_whether_it_is_a_class() -> None:
    assert parse("urn:epc:id:sgtin:0614141.107346.2018").scheme == "sgtin"
    assert parse("urn:epc:class:lgtin:4012345.012345.998877").is_class
    assert parse("urn:epc:idpat:sgtin:4012345.098765.*").is_class
    assert not parse("urn:epc:id:sscc:0614141.1234567890").is_class
    assert parse("urn:epc:id:sgln:0614141.00777.0").scheme == "sgln"
    with pytest.raises(IdentifierError, match="not a GS1 identifier"):
        parse("http://example.com/x")
