"""GS1 identifiers: check digits, EPC URN <-> GS1 Digital Link, canonical forms.

One pack must have one identity, whichever form a partner sends. The canonical form is the
*constrained* canonical GS1 Digital Link of CBV 2.0 (the same form the event hash uses):

* host ``https://id.gs1.org``, numeric AIs, GTIN padded to 14 digits, no query string;
* only the most granular key: a serial makes a lot redundant (``/01/g/10/l/21/s`` -> ``/01/g/21/s``)
  and a consumer product variant (AI 22) is dropped;
* AI values percent-encoded the same way whatever form they arrived in.

Non-GS1 URIs (other schemes, custom ``http://example.com/...`` identifiers) pass through unchanged.
Converting back to an EPC URN needs the GS1 Company Prefix length, which a GTIN, GLN or SSCC does
not carry; callers supply it (``to_urn``).

References: GS1 EPC Tag Data Standard 2.0 (URN grammar), GS1 Digital Link URI Syntax 1.2,
GS1 General Specifications §7.9 (check digits), CBV 2.0 §8.9 (constrained canonical form).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

CANONICAL_HOST = "https://id.gs1.org"

# Given the digits of a key that start with the GS1 Company Prefix (GTIN-14 and SSCC without their first
# digit, GLN as is), return the prefix length, or None when it is unknown.
PrefixLengthLookup = Callable[[str], int | None]


class IdentifierError(ValueError):
    """A GS1 identifier that is malformed or fails its check digit; the message says what to do."""


def gs1_check_digit(digits: str) -> int:
    """Mod-10 check digit of a GS1 key without its check digit (GTIN, GLN, SSCC).

    Weights 3,1,3,1... from the rightmost data digit.
    """
    if not _is_ascii_digits(digits):
        raise ValueError(f"GS1 keys are digits only, got {digits!r}")
    reverse = digits[::-1]
    # Summing slices with map(int) is several times faster than a weighted generator; this runs for every EPC.
    total = 3 * sum(map(int, reverse[0::2])) + sum(map(int, reverse[1::2]))
    return (10 - total % 10) % 10


def has_valid_check_digit(key: str) -> bool:
    """True when the last digit of a full GS1 key is its correct check digit."""
    return len(key) >= 2 and _is_ascii_digits(key) and gs1_check_digit(key[:-1]) == int(key[-1])


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit alone accepts other scripts' digits (Arabic-Indic, superscripts), which no GS1 key may contain.
    return text.isascii() and text.isdigit()


# --------------------------------------------------------------------------------------------------------------
# Character sets and value encodings
# --------------------------------------------------------------------------------------------------------------

# GS1 AI encodable character set 82 (serials, lots, GIAI...): what a barcode can carry.
_CSET82 = re.compile(r"""[!"%&'()*+,\-./0-9:;<=>?A-Z_a-z]*""")
# GS1 AI encodable character set 39 (CPID).
_CSET39 = re.compile(r"[#\-/0-9A-Z]*")
# One component of an EPC pure-identity URN: TDS "GS3A3" characters or %-escapes.
_URN_COMPONENT = re.compile(r"(?:[A-Za-z0-9!'()*+,\-.:;=_]|%[0-9A-Fa-f]{2})*")
_DIGITS = re.compile(r"[0-9]*")


_PLAIN = re.compile(r"[A-Za-z0-9._\-]*")


def _dl_encode(value: str) -> str:
    """Percent-encode an AI value for a Digital Link path (GS1 DL 1.2 table 7-1, uppercase hex)."""
    if _PLAIN.fullmatch(value):
        return value  # the common case (digits, letters, - . _) needs no encoding; skip quote()'s overhead
    # Kept raw: unreserved characters and the sub-delimiters the reference implementation leaves alone.
    return quote(value, safe="';=")


def _urn_encode(value: str) -> str:
    """Percent-encode an AI value for an EPC URN (TDS: escape " % & / < > ? and anything outside GS3A3)."""
    return value if _PLAIN.fullmatch(value) else quote(value, safe="!'()*+,-.:;=_")


def _check_chars(value: str, what: str, *, cset39: bool = False) -> None:
    pattern, name = (_CSET39, "0-9, A-Z, # - /") if cset39 else (_CSET82, "GS1 character set 82")
    if not pattern.fullmatch(value):
        raise IdentifierError(
            f"{what} {value!r} contains characters outside {name}; a GS1 barcode cannot carry them. "
            "Use letters, digits and - . _ only."
        )


def _check_len(value: str, what: str, maximum: int, *, minimum: int = 1) -> None:
    if not minimum <= len(value) <= maximum:
        raise IdentifierError(f"{what} {value!r} must be {minimum} to {maximum} characters long, not {len(value)}.")


def _check_digits(value: str, what: str, length: int) -> None:
    if len(value) != length or not _is_ascii_digits(value):
        raise IdentifierError(f"{what} {value!r} must be exactly {length} digits.")


def _check_key(key: str, what: str) -> None:
    """Verify the GS1 mod-10 check digit and say which digit was expected."""
    if not has_valid_check_digit(key):
        expected = gs1_check_digit(key[:-1])
        raise IdentifierError(
            f"{what} {key!r} has check digit {key[-1]} but its digits give {expected}: the number was mistyped "
            "or corrupted. Re-read it from the label or the master data; do not just change the last digit."
        )


# --------------------------------------------------------------------------------------------------------------
# The identifier
# --------------------------------------------------------------------------------------------------------------

# Primary-key AIs, with the convenience alphas of GS1 Digital Link 1.x.
_PRIMARY_ALIASES = {
    "gtin": "01", "sscc": "00", "gln": "414", "party": "417", "grai": "8003", "giai": "8004", "gsrn": "8018",
    "gsrnp": "8017", "gdti": "253", "cpid": "8010", "gcn": "255", "ginc": "401", "gsin": "402", "itip": "8006",
}  # fmt: skip
_QUALIFIER_ALIASES = {"cpv": "22", "lot": "10", "ser": "21"}
_PRIMARY_AIS = frozenset(_PRIMARY_ALIASES.values())
# Key qualifiers allowed after each primary key, in the order GS1 Digital Link requires.
_QUALIFIERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "01": (("22", "10", "21"), ("235",)),
    "8006": (("22", "10", "21"),),
    "414": (("254",),),
    "8010": (("8011",),),
}
_QUALIFIER_NAMES = {
    "22": "consumer product variant",
    "10": "lot",
    "21": "serial",
    "235": "third-party serial",
    "254": "GLN extension",
    "8011": "CPID serial",
}
_SCHEME_OF_AI = {"00": "sscc", "414": "sgln", "417": "pgln", "8003": "grai", "8004": "giai", "8018": "gsrn",
                 "8017": "gsrnp", "253": "gdti", "8010": "cpi", "255": "sgcn", "401": "ginc", "402": "gsin",
                 "8006": "itip"}  # fmt: skip
_QUALIFIER_MAX = {"22": 20, "10": 20, "21": 20, "235": 28, "254": 20, "8011": 12}


@dataclass(frozen=True)
class GS1Identifier:
    """A GS1 key with its qualifiers, values decoded (no percent-escapes), in constrained canonical form.

    ``ai`` is the primary-key AI ("01", "00", "414"...), ``value`` its value (a GTIN is always 14
    digits), ``qualifiers`` the (AI, value) pairs that follow it in Digital Link order.
    """

    ai: str
    value: str
    qualifiers: tuple[tuple[str, str], ...] = ()

    def qualifier(self, ai: str) -> str | None:
        return next((v for q, v in self.qualifiers if q == ai), None)

    @property
    def scheme(self) -> str:
        """The EPC scheme name: sgtin, lgtin, gtin (all serials of a GTIN), sscc, sgln, pgln, grai..."""
        if self.ai == "01":
            if self.qualifier("21") is not None:
                return "sgtin"
            if self.qualifier("10") is not None:
                return "lgtin"
            return "upui" if self.qualifier("235") is not None else "gtin"
        return _SCHEME_OF_AI[self.ai]

    @property
    def is_class(self) -> bool:
        """True for identifiers of a class of objects (lot, product, asset type), which go in quantity lists."""
        if self.ai in ("01", "8006"):
            return self.qualifier("21") is None and self.qualifier("235") is None
        if self.ai == "8003":
            return len(self.value) == 14  # a GRAI without serial is an asset type
        if self.ai in ("253", "255"):
            return len(self.value) == 13
        if self.ai == "8010":
            return self.qualifier("8011") is None
        return False

    def digital_link(self) -> str:
        path = f"/{self.ai}/{_dl_encode(self.value)}"
        for ai, value in self.qualifiers:
            path += f"/{ai}/{_dl_encode(value)}"
        return CANONICAL_HOST + path

    def prefix_digits(self) -> str:
        """The digits a GS1 Company Prefix lookup starts from (see PrefixLengthLookup)."""
        return self.value[1:] if self.ai in ("01", "00", "8003", "8006") else self.value

    def urn(self, company_prefix_length: int) -> str:
        """The EPC URN; needs the GS1 Company Prefix length (6 to 12 digits) that the key itself does not carry."""
        if not 6 <= company_prefix_length <= 12:
            raise IdentifierError(
                f"A GS1 Company Prefix is 6 to 12 digits long, not {company_prefix_length}; "
                "look the prefix up in the partner's registration."
            )
        builder = _URN_BUILDERS.get(self.scheme)
        if builder is None or (self.ai == "8006" and self.qualifier("10") is not None):
            raise IdentifierError(f"{self.digital_link()} has no EPC URN form; send it as a GS1 Digital Link.")
        cp = self.prefix_digits()[:company_prefix_length]
        if not _is_ascii_digits(cp) or len(cp) != company_prefix_length:
            raise IdentifierError(
                f"{self.digital_link()} cannot start with a {company_prefix_length}-digit GS1 Company Prefix."
            )
        return builder(self, company_prefix_length)


# --------------------------------------------------------------------------------------------------------------
# Key validation (shared by the URN and Digital Link parsers)
# --------------------------------------------------------------------------------------------------------------


def _validate(ident: GS1Identifier, *, check_digits: bool = True) -> GS1Identifier:
    """Check lengths, character sets and check digits of a freshly built identifier.

    URNs carry no check digit (it is computed when building the key), so ``check_digits`` is off for them.
    """
    ai, value = ident.ai, ident.value
    check_key = _check_key if check_digits else _no_check
    if ai == "01":
        _check_digits(value, "GTIN", 14)
        check_key(value, "GTIN")
    elif ai == "00":
        _check_digits(value, "SSCC", 18)
        check_key(value, "SSCC")
    elif ai in ("414", "417"):
        _check_digits(value, "GLN", 13)
        check_key(value, "GLN")
    elif ai in ("8018", "8017"):
        _check_digits(value, "GSRN" if ai == "8018" else "GSRN-P", 18)
        check_key(value, "GSRN")
    elif ai == "402":
        _check_digits(value, "GSIN", 17)
        check_key(value, "GSIN")
    elif ai == "8003":
        _check_digits(value[:14], "GRAI (first 14 characters)", 14)
        if value[0] != "0":
            raise IdentifierError(f"GRAI {value!r} must start with 0 (AI 8003 is N1 0 + N13 GRAI).")
        check_key(value[1:14], "GRAI")
        _check_serial(value[14:], "GRAI serial", 16, optional=True)
    elif ai in ("253", "255"):
        name = "GDTI" if ai == "253" else "GCN"
        _check_digits(value[:13], f"{name} (first 13 digits)", 13)
        check_key(value[:13], name)
        if ai == "253":
            _check_serial(value[13:], "GDTI serial", 17, optional=True)
        elif not _DIGITS.fullmatch(value[13:]) or len(value) > 25:
            raise IdentifierError(f"GCN serial {value[13:]!r} must be up to 12 digits.")
    elif ai == "8006":
        _check_digits(value, "ITIP", 18)
        check_key(value[:14], "ITIP GTIN")
    elif ai in ("8004", "401"):
        name = "GIAI" if ai == "8004" else "GINC"
        _check_serial(value, name, 30)
    elif ai == "8010":
        _check_len(value, "CPID", 30)
        _check_chars(value, "CPID", cset39=True)
    for q, v in ident.qualifiers:
        if q == "8011":
            if not _is_ascii_digits(v) or len(v) > 12:
                raise IdentifierError(f"CPID serial {v!r} must be 1 to 12 digits.")
        else:
            _check_serial(v, _QUALIFIER_NAMES[q], _QUALIFIER_MAX[q])
    return ident


def _no_check(key: str, what: str) -> None:
    """Stands in for _check_key where the check digit was computed, not received."""


def _check_serial(value: str, what: str, maximum: int, *, optional: bool = False) -> None:
    if optional and not value:
        return
    _check_len(value, what, maximum)
    _check_chars(value, what)


def _constrain(ai: str, value: str, qualifiers: list[tuple[str, str]]) -> GS1Identifier:
    """Keep only the most granular key qualifiers (CBV 2.0 constrained canonical Digital Link)."""
    kept = [(q, v) for q, v in qualifiers if q != "22"]
    if any(q == "21" for q, _ in kept):
        kept = [(q, v) for q, v in kept if q != "10"]
    return GS1Identifier(ai, value, tuple(kept))


# --------------------------------------------------------------------------------------------------------------
# EPC URN parsing
# --------------------------------------------------------------------------------------------------------------

_URN = re.compile(r"urn:epc:(id|class|idpat):([a-z0-9]+):(.*)", re.IGNORECASE | re.ASCII)
# EPC schemes that are not GS1 keys: valid EPCs with no Digital Link form, passed through unchanged.
_NON_GS1_EPC_SCHEMES = frozenset({"gid", "usdod", "adi", "bic", "imovn"})


def _decode_component(component: str, what: str, urn: str) -> str:
    if not _URN_COMPONENT.fullmatch(component):
        raise IdentifierError(
            f"{urn}: the {what} {component!r} has characters an EPC URN does not allow; percent-encode "
            '" % & / < > ? as %22 %25 %26 %2F %3C %3E %3F.'
        )
    return unquote(component)


def _split(body: str, parts: int, urn: str, shape: str) -> list[str]:
    fields = body.split(".", parts - 1)
    if len(fields) != parts:
        raise IdentifierError(f"{urn} is not of the form {shape}.")
    return fields


def _company_and_ref(cp: str, ref: str, total: int, urn: str, names: str) -> None:
    if not (_is_ascii_digits(cp) and 6 <= len(cp) <= 12 and _DIGITS.fullmatch(ref) and len(cp) + len(ref) == total):
        raise IdentifierError(
            f"{urn}: {names} must be digits, the company prefix 6 to 12 of them and both together {total}; "
            f"got {cp!r} and {ref!r}."
        )


def _parse_urn(uri: str) -> GS1Identifier | None:
    match = _URN.fullmatch(uri)
    if match is None:
        raise IdentifierError(
            f"{uri!r} is not an EPC URN: expected urn:epc:id:<scheme>:..., urn:epc:class:lgtin:... or "
            "urn:epc:idpat:<scheme>:..."
        )
    kind, scheme, body = match.group(1).lower(), match.group(2).lower(), match.group(3)
    if kind == "id" and scheme in _NON_GS1_EPC_SCHEMES:
        return None
    parser = _URN_PARSERS.get((kind, scheme))
    if parser is None:
        raise IdentifierError(
            f"{uri}: urn:epc:{kind}:{scheme} is not a GS1 EPC scheme this service reads. Use sgtin, sscc, sgln, "
            "pgln, grai, giai, gsrn, gsrnp, gdti, cpi, sgcn, ginc, gsin, itip or upui; lgtin for lot classes."
        )
    return _validate(parser(body, uri), check_digits=False)


def _gtin_from(cp: str, item_ref: str) -> str:
    body = item_ref[0] + cp + item_ref[1:]
    return body + str(gs1_check_digit(body))


def _urn_sgtin(body: str, urn: str) -> GS1Identifier:
    cp, ir, serial = _split(body, 3, urn, "urn:epc:id:sgtin:CompanyPrefix.IndicatorItemRef.Serial")
    _company_and_ref(cp, ir, 13, urn, "company prefix and indicator+item reference")
    return GS1Identifier("01", _gtin_from(cp, ir), (("21", _decode_component(serial, "serial", urn)),))


def _urn_lgtin(body: str, urn: str) -> GS1Identifier:
    cp, ir, lot = _split(body, 3, urn, "urn:epc:class:lgtin:CompanyPrefix.IndicatorItemRef.Lot")
    _company_and_ref(cp, ir, 13, urn, "company prefix and indicator+item reference")
    return GS1Identifier("01", _gtin_from(cp, ir), (("10", _decode_component(lot, "lot", urn)),))


def _pattern_fields(body: str, urn: str, parts: int, shape: str) -> list[str]:
    fields = body.split(".")
    if len(fields) != parts or fields[-1] != "*":
        raise IdentifierError(f"{urn} is not of the form {shape}.")
    if "*" in fields[:-1]:
        raise IdentifierError(
            f"{urn} matches every item of a company; it has no Digital Link form. Name the product: "
            "give the item reference and use * for the serial only."
        )
    return fields[:-1]


def _idpat_sgtin(body: str, urn: str) -> GS1Identifier:
    cp, ir = _pattern_fields(body, urn, 3, "urn:epc:idpat:sgtin:CompanyPrefix.IndicatorItemRef.*")
    _company_and_ref(cp, ir, 13, urn, "company prefix and indicator+item reference")
    return GS1Identifier("01", _gtin_from(cp, ir))


def _urn_upui(body: str, urn: str) -> GS1Identifier:
    cp, ir, tpx = _split(body, 3, urn, "urn:epc:id:upui:CompanyPrefix.IndicatorItemRef.TPX")
    _company_and_ref(cp, ir, 13, urn, "company prefix and indicator+item reference")
    return GS1Identifier("01", _gtin_from(cp, ir), (("235", _decode_component(tpx, "TPX", urn)),))


def _idpat_upui(body: str, urn: str) -> GS1Identifier:
    return _idpat_sgtin(body, urn)


def _urn_sscc(body: str, urn: str) -> GS1Identifier:
    cp, sr = _split(body, 2, urn, "urn:epc:id:sscc:CompanyPrefix.ExtensionSerialRef")
    _company_and_ref(cp, sr, 17, urn, "company prefix and extension+serial reference")
    digits = sr[0] + cp + sr[1:]
    return GS1Identifier("00", digits + str(gs1_check_digit(digits)))


def _gln_from(cp: str, ref: str) -> str:
    return cp + ref + str(gs1_check_digit(cp + ref))


def _urn_sgln(body: str, urn: str) -> GS1Identifier:
    cp, lr, ext = _split(body, 3, urn, "urn:epc:id:sgln:CompanyPrefix.LocationRef.Extension")
    _company_and_ref(cp, lr, 12, urn, "company prefix and location reference")
    extension = _decode_component(ext, "extension", urn)
    # TDS: extension "0" means "no extension", so it maps to the bare GLN.
    qualifiers = () if extension == "0" else (("254", extension),)
    return GS1Identifier("414", _gln_from(cp, lr), qualifiers)


def _urn_pgln(body: str, urn: str) -> GS1Identifier:
    cp, pr = _split(body, 2, urn, "urn:epc:id:pgln:CompanyPrefix.PartyRef")
    _company_and_ref(cp, pr, 12, urn, "company prefix and party reference")
    return GS1Identifier("417", _gln_from(cp, pr))


def _urn_grai(body: str, urn: str) -> GS1Identifier:
    cp, at, serial = _split(body, 3, urn, "urn:epc:id:grai:CompanyPrefix.AssetType.Serial")
    _company_and_ref(cp, at, 12, urn, "company prefix and asset type")
    return GS1Identifier("8003", "0" + _gln_from(cp, at) + _decode_component(serial, "serial", urn))


def _idpat_grai(body: str, urn: str) -> GS1Identifier:
    cp, at = _pattern_fields(body, urn, 3, "urn:epc:idpat:grai:CompanyPrefix.AssetType.*")
    _company_and_ref(cp, at, 12, urn, "company prefix and asset type")
    return GS1Identifier("8003", "0" + _gln_from(cp, at))


def _urn_giai(body: str, urn: str) -> GS1Identifier:
    cp, ref = _split(body, 2, urn, "urn:epc:id:giai:CompanyPrefix.IndividualAssetRef")
    _company_and_ref(cp, "", len(cp), urn, "company prefix")
    return GS1Identifier("8004", cp + _decode_component(ref, "asset reference", urn))


def _urn_gsrn(body: str, urn: str, ai: str = "8018") -> GS1Identifier:
    cp, sr = _split(body, 2, urn, "urn:epc:id:gsrn:CompanyPrefix.ServiceRef")
    _company_and_ref(cp, sr, 17, urn, "company prefix and service reference")
    return GS1Identifier(ai, cp + sr + str(gs1_check_digit(cp + sr)))


def _urn_gsrnp(body: str, urn: str) -> GS1Identifier:
    return _urn_gsrn(body, urn, "8017")


def _urn_gdti(body: str, urn: str) -> GS1Identifier:
    cp, dt, serial = _split(body, 3, urn, "urn:epc:id:gdti:CompanyPrefix.DocumentType.Serial")
    _company_and_ref(cp, dt, 12, urn, "company prefix and document type")
    return GS1Identifier("253", _gln_from(cp, dt) + _decode_component(serial, "serial", urn))


def _idpat_gdti(body: str, urn: str) -> GS1Identifier:
    cp, dt = _pattern_fields(body, urn, 3, "urn:epc:idpat:gdti:CompanyPrefix.DocumentType.*")
    _company_and_ref(cp, dt, 12, urn, "company prefix and document type")
    return GS1Identifier("253", _gln_from(cp, dt))


def _urn_sgcn(body: str, urn: str) -> GS1Identifier:
    cp, cr, serial = _split(body, 3, urn, "urn:epc:id:sgcn:CompanyPrefix.CouponRef.Serial")
    _company_and_ref(cp, cr, 12, urn, "company prefix and coupon reference")
    return GS1Identifier("255", _gln_from(cp, cr) + serial)


def _idpat_sgcn(body: str, urn: str) -> GS1Identifier:
    cp, cr = _pattern_fields(body, urn, 3, "urn:epc:idpat:sgcn:CompanyPrefix.CouponRef.*")
    _company_and_ref(cp, cr, 12, urn, "company prefix and coupon reference")
    return GS1Identifier("255", _gln_from(cp, cr))


def _urn_cpi(body: str, urn: str) -> GS1Identifier:
    cp, rest = _split(body, 2, urn, "urn:epc:id:cpi:CompanyPrefix.ComponentPartRef.Serial")
    ref, _, serial = rest.rpartition(".")
    if not ref:
        raise IdentifierError(f"{urn} is not of the form urn:epc:id:cpi:CompanyPrefix.ComponentPartRef.Serial.")
    _company_and_ref(cp, "", len(cp), urn, "company prefix")
    return GS1Identifier("8010", cp + _decode_component(ref, "part reference", urn), (("8011", serial),))


def _idpat_cpi(body: str, urn: str) -> GS1Identifier:
    cp, ref = _pattern_fields(body, urn, 3, "urn:epc:idpat:cpi:CompanyPrefix.ComponentPartRef.*")
    _company_and_ref(cp, "", len(cp), urn, "company prefix")
    return GS1Identifier("8010", cp + _decode_component(ref, "part reference", urn))


def _urn_ginc(body: str, urn: str) -> GS1Identifier:
    cp, ref = _split(body, 2, urn, "urn:epc:id:ginc:CompanyPrefix.ConsignmentRef")
    _company_and_ref(cp, "", len(cp), urn, "company prefix")
    return GS1Identifier("401", cp + _decode_component(ref, "consignment reference", urn))


def _urn_gsin(body: str, urn: str) -> GS1Identifier:
    cp, ref = _split(body, 2, urn, "urn:epc:id:gsin:CompanyPrefix.ShipperRef")
    _company_and_ref(cp, ref, 16, urn, "company prefix and shipper reference")
    return GS1Identifier("402", cp + ref + str(gs1_check_digit(cp + ref)))


def _urn_itip(body: str, urn: str) -> GS1Identifier:
    cp, ir, piece, total, serial = _split(body, 5, urn, "urn:epc:id:itip:CompanyPrefix.ItemRef.Piece.Total.Serial")
    _company_and_ref(cp, ir, 13, urn, "company prefix and indicator+item reference")
    _itip_pieces(piece, total, urn)
    return GS1Identifier(
        "8006", _gtin_from(cp, ir) + piece + total, (("21", _decode_component(serial, "serial", urn)),)
    )


def _idpat_itip(body: str, urn: str) -> GS1Identifier:
    cp, ir, piece, total = _pattern_fields(body, urn, 5, "urn:epc:idpat:itip:CompanyPrefix.ItemRef.Piece.Total.*")
    _company_and_ref(cp, ir, 13, urn, "company prefix and indicator+item reference")
    _itip_pieces(piece, total, urn)
    return GS1Identifier("8006", _gtin_from(cp, ir) + piece + total)


def _itip_pieces(piece: str, total: str, urn: str) -> None:
    if not (len(piece) == len(total) == 2 and _is_ascii_digits(piece + total)):
        raise IdentifierError(f"{urn}: piece and total must be two digits each.")


_URN_PARSERS: dict[tuple[str, str], Callable[[str, str], GS1Identifier]] = {
    ("id", "sgtin"): _urn_sgtin, ("class", "lgtin"): _urn_lgtin, ("idpat", "sgtin"): _idpat_sgtin,
    ("id", "upui"): _urn_upui, ("idpat", "upui"): _idpat_upui, ("id", "sscc"): _urn_sscc,
    ("id", "sgln"): _urn_sgln, ("id", "pgln"): _urn_pgln, ("id", "grai"): _urn_grai, ("idpat", "grai"): _idpat_grai,
    ("id", "giai"): _urn_giai, ("id", "gsrn"): _urn_gsrn, ("id", "gsrnp"): _urn_gsrnp, ("id", "gdti"): _urn_gdti,
    ("idpat", "gdti"): _idpat_gdti, ("id", "sgcn"): _urn_sgcn, ("idpat", "sgcn"): _idpat_sgcn,
    ("id", "cpi"): _urn_cpi, ("idpat", "cpi"): _idpat_cpi, ("id", "ginc"): _urn_ginc, ("id", "gsin"): _urn_gsin,
    ("id", "itip"): _urn_itip, ("idpat", "itip"): _idpat_itip,
}  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# EPC URN building (Digital Link -> URN)
# --------------------------------------------------------------------------------------------------------------


def _gtin_parts(gtin: str, length: int) -> tuple[str, str]:
    return gtin[1 : 1 + length], gtin[0] + gtin[1 + length : 13]


def _build_gtin_based(ident: GS1Identifier, length: int) -> str:
    cp, ir = _gtin_parts(ident.value[:14], length)
    serial, lot, tpx = ident.qualifier("21"), ident.qualifier("10"), ident.qualifier("235")
    if ident.ai == "8006":
        pieces = f"{ident.value[14:16]}.{ident.value[16:18]}"
        if serial is None:
            return f"urn:epc:idpat:itip:{cp}.{ir}.{pieces}.*"
        return f"urn:epc:id:itip:{cp}.{ir}.{pieces}.{_urn_encode(serial)}"
    if serial is not None:
        return f"urn:epc:id:sgtin:{cp}.{ir}.{_urn_encode(serial)}"
    if lot is not None:
        return f"urn:epc:class:lgtin:{cp}.{ir}.{_urn_encode(lot)}"
    if tpx is not None:
        return f"urn:epc:id:upui:{cp}.{ir}.{_urn_encode(tpx)}"
    return f"urn:epc:idpat:sgtin:{cp}.{ir}.*"


def _build_sscc(ident: GS1Identifier, length: int) -> str:
    v = ident.value
    return f"urn:epc:id:sscc:{v[1 : 1 + length]}.{v[0]}{v[1 + length : 17]}"


def _build_gln_based(ident: GS1Identifier, length: int) -> str:
    cp, ref = ident.value[:length], ident.value[length:12]
    if ident.ai == "417":
        return f"urn:epc:id:pgln:{cp}.{ref}"
    return f"urn:epc:id:sgln:{cp}.{ref}.{_urn_encode(ident.qualifier('254') or '0')}"


def _build_grai(ident: GS1Identifier, length: int) -> str:
    v = ident.value
    cp, at = v[1 : 1 + length], v[1 + length : 13]
    return f"urn:epc:idpat:grai:{cp}.{at}.*" if len(v) == 14 else f"urn:epc:id:grai:{cp}.{at}.{_urn_encode(v[14:])}"


def _build_thirteen_plus_serial(ident: GS1Identifier, length: int) -> str:
    v, scheme = ident.value, ident.scheme
    cp, ref = v[:length], v[length:12]
    if len(v) == 13:
        return f"urn:epc:idpat:{scheme}:{cp}.{ref}.*"
    return f"urn:epc:id:{scheme}:{cp}.{ref}.{_urn_encode(v[13:])}"


def _build_prefix_plus_ref(ident: GS1Identifier, length: int) -> str:
    return f"urn:epc:id:{ident.scheme}:{ident.value[:length]}.{_urn_encode(ident.value[length:])}"


def _build_fixed(ident: GS1Identifier, length: int) -> str:
    v = ident.value
    return f"urn:epc:id:{ident.scheme}:{v[:length]}.{v[length:-1]}"


def _build_cpi(ident: GS1Identifier, length: int) -> str:
    cp, ref = ident.value[:length], _urn_encode(ident.value[length:])
    serial = ident.qualifier("8011")
    return f"urn:epc:idpat:cpi:{cp}.{ref}.*" if serial is None else f"urn:epc:id:cpi:{cp}.{ref}.{serial}"


_URN_BUILDERS: dict[str, Callable[[GS1Identifier, int], str]] = {
    "sgtin": _build_gtin_based, "lgtin": _build_gtin_based, "gtin": _build_gtin_based, "upui": _build_gtin_based,
    "itip": _build_gtin_based, "sscc": _build_sscc, "sgln": _build_gln_based, "pgln": _build_gln_based,
    "grai": _build_grai, "gdti": _build_thirteen_plus_serial, "sgcn": _build_thirteen_plus_serial,
    "giai": _build_prefix_plus_ref, "ginc": _build_prefix_plus_ref, "gsrn": _build_fixed, "gsrnp": _build_fixed,
    "gsin": _build_fixed, "cpi": _build_cpi,
}  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# GS1 Digital Link parsing
# --------------------------------------------------------------------------------------------------------------

# What the value after a primary AI must look like for a URI on a custom host to be read as a Digital Link.
# Without this, any http URI with an "/01/" path segment (a date, say) would be taken for a GTIN.
_PRIMARY_SHAPE = {
    ai: re.compile(shape.replace(r"\d", "[0-9]"))  # ASCII digits only: \d would also match other scripts' digits
    for ai, shape in {
        "01": r"\d{8}|\d{12,14}",
        "00": r"\d{18}",
        "414": r"\d{13}",
        "417": r"\d{13}",
        "8018": r"\d{18}",
        "8017": r"\d{18}",
        "402": r"\d{17}",
        "8006": r"\d{18}",
        "8003": r"\d{14}.*",
        "253": r"\d{13}.*",
        "255": r"\d{13}\d*",
        "8004": r"\d{4}.*",
        "401": r"\d{4}.*",
        "8010": r"\d{4}.*",
    }.items()
}


_SHAPE_NAMES = {
    "01": "GTIN (8, 12, 13 or 14 digits)", "00": "SSCC (18 digits)", "414": "GLN (13 digits)",
    "417": "GLN (13 digits)", "8018": "GSRN (18 digits)", "8017": "GSRN-P (18 digits)", "402": "GSIN (17 digits)",
    "8006": "ITIP (18 digits)", "8003": "GRAI (14 digits, then an optional serial)",
    "253": "GDTI (13 digits, then an optional serial)", "255": "GCN (13 digits, then an optional serial)",
    "8004": "GIAI (company prefix, then a reference)", "401": "GINC (company prefix, then a reference)",
    "8010": "CPID (company prefix, then a reference)",
}  # fmt: skip


def _locate_key(segments: list[str], strict: bool) -> int | None:
    """Index of the primary-key AI segment; None when the path holds no GS1 key (custom hosts only)."""
    for i, segment in enumerate(segments[:-1]):
        ai = _PRIMARY_ALIASES.get(segment, segment)
        if ai not in _PRIMARY_AIS:
            continue
        if _PRIMARY_SHAPE[ai].fullmatch(unquote(segments[i + 1])):
            return i
        if strict:
            raise IdentifierError(
                f"The value {unquote(segments[i + 1])!r} after /{segment}/ is not a {_SHAPE_NAMES[ai]}. "
                "Copy the key from the barcode or master data, with its check digit."
            )
    if strict:
        raise IdentifierError(
            f"{'/'.join(segments) or '(empty path)'}: no GS1 primary key found. A GS1 Digital Link looks like "
            "https://id.gs1.org/01/<GTIN-14>/21/<serial> (or /00/<SSCC>, /414/<GLN>, /417/<GLN>...)."
        )
    return None


def _parse_qualifiers(ai: str, rest: list[str], uri: str) -> list[tuple[str, str]]:
    if len(rest) % 2:
        raise IdentifierError(f"{uri}: path segments after the key must come in AI/value pairs.")
    pairs = [(_QUALIFIER_ALIASES.get(rest[i], rest[i]), unquote(rest[i + 1])) for i in range(0, len(rest), 2)]
    got = tuple(q for q, _ in pairs)
    for allowed in _QUALIFIERS.get(ai, ((),)):
        # The qualifiers must be a subsequence of an allowed order (e.g. 22, 10, 21 for a GTIN).
        position = 0
        for q in got:
            while position < len(allowed) and allowed[position] != q:
                position += 1
            if position == len(allowed):
                break
            position += 1
        else:
            return pairs
    wanted = " or ".join("/".join(order) for order in _QUALIFIERS.get(ai, ())) or "none"
    raise IdentifierError(
        f"{uri}: key qualifiers {'/'.join(got)} are not allowed after AI {ai} in this order (allowed: {wanted}). "
        "GS1 Digital Link puts the key first, then its qualifiers, e.g. /01/<GTIN>/10/<lot>/21/<serial>."
    )


def _check_path_prefix(prefix: list[str], strict: bool, uri: str) -> None:
    """Refuse key qualifiers before the key (/21/.../01/...): GS1 Digital Link fixes the order."""
    misplaced = [s for s in prefix if _QUALIFIER_ALIASES.get(s, s) in _QUALIFIER_NAMES]
    if misplaced or (strict and prefix):
        raise IdentifierError(
            f"{uri}: the path must start with the GS1 key, then its qualifiers in order, e.g. "
            "https://id.gs1.org/01/<GTIN>/21/<serial>; found /" + "/".join(prefix) + " before the key."
        )


def _parse_digital_link(uri: str) -> GS1Identifier | None:
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise IdentifierError(f"{uri!r} is not a valid URI: {exc}.") from exc
    strict = parts.hostname == "id.gs1.org"
    segments = [s for s in parts.path.split("/") if s != ""]
    index = _locate_key(segments, strict)
    if index is None:
        return None
    _check_path_prefix(segments[:index], strict, uri)
    ai = _PRIMARY_ALIASES.get(segments[index], segments[index])
    value = unquote(segments[index + 1])
    qualifiers = _parse_qualifiers(ai, segments[index + 2 :], uri)
    if ai == "01" and _is_ascii_digits(value) and len(value) in (8, 12, 13):
        value = value.zfill(14)  # GTIN-8/12/13 are GTIN-14 with leading zeros
    return _validate(_constrain(ai, value, qualifiers))


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def _is_urn(uri: str) -> bool:
    return uri[:8].lower() == "urn:epc:"


def _is_http(uri: str) -> bool:
    head = uri[:8].lower()
    return head.startswith(("http://", "https://"))


@lru_cache(maxsize=65536)
def _recognise(uri: str) -> GS1Identifier | None:
    """The parsed GS1 key; None for URIs that are not GS1 keys; IdentifierError for broken GS1 keys."""
    if _is_urn(uri):
        return _parse_urn(uri)
    if _is_http(uri):
        return _parse_digital_link(uri)
    return None


def parse(uri: str) -> GS1Identifier:
    """Parse an EPC URN or GS1 Digital Link; IdentifierError if it is not a valid GS1 key."""
    if not isinstance(uri, str):
        raise IdentifierError(f"An identifier must be a string, not {type(uri).__name__}.")
    ident = _recognise(uri)
    if ident is None:
        raise IdentifierError(
            f"{uri!r} is not a GS1 identifier: use an EPC URN (urn:epc:id:sgtin:...) or a GS1 Digital Link "
            "(https://id.gs1.org/01/<GTIN>/21/<serial>)."
        )
    return ident


def is_gs1_identifier(uri: str) -> bool:
    """True when the URI is written as a GS1 key (EPC URN of a GS1 scheme, or a Digital Link), valid or not.

    Whether it is *valid* is answered by ``canonical``/``parse``, which raise IdentifierError.
    """
    if not isinstance(uri, str):
        return False
    if _is_urn(uri):
        match = _URN.fullmatch(uri)
        return not (match and match.group(1).lower() == "id" and match.group(2).lower() in _NON_GS1_EPC_SCHEMES)
    return _is_http(uri) and _looks_like_digital_link(uri)


def _looks_like_digital_link(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if parts.hostname == "id.gs1.org":
        return True
    segments = [s for s in parts.path.split("/") if s]
    return _locate_key(segments, strict=False) is not None


def canonical(uri: str) -> str:
    """The constrained canonical GS1 Digital Link of a GS1 key; any other URI unchanged.

    Raises IdentifierError (with what is wrong and what to do) for malformed GS1 keys and bad check digits.
    """
    ident = _recognise(uri) if isinstance(uri, str) else None
    return uri if ident is None else ident.digital_link()


def to_urn(canonical: str, company_prefix_length: int) -> str:
    """The EPC URN of a GS1 key (any form); non-GS1 URIs are returned unchanged."""
    ident = _recognise(canonical)
    return canonical if ident is None else ident.urn(company_prefix_length)


def to_urn_with(uri: str, prefix_length: PrefixLengthLookup) -> str:
    """The EPC URN when the company prefix length is known, else the canonical Digital Link."""
    ident = _recognise(uri)
    if ident is None:
        return uri
    length = prefix_length(ident.prefix_digits())
    if length is None:
        return ident.digital_link()
    try:
        return ident.urn(length)
    except IdentifierError:
        # Schemes without a URN form (a lot of an ITIP) and inconsistent prefix tables: Digital Link is exact.
        return ident.digital_link()


_CANONICAL_GTIN = re.compile(r"https://id\.gs1\.org/01/(\d{14})(?:/(10|21|235)/([^/]+))?", re.ASCII)
_CANONICAL_GLN = re.compile(r"https://id\.gs1\.org/(414|417)/(\d{13})(?:/254/[^/]+)?", re.ASCII)


def gtin_of(canonical: str) -> str | None:
    """The GTIN-14 of an SGTIN, lot class, GTIN or UPUI; None for other identifiers."""
    match = _CANONICAL_GTIN.fullmatch(canonical)  # fast path: canonical strings from normalised events
    if match:
        return match.group(1)
    ident = _recognise(canonical)
    return ident.value if ident is not None and ident.ai == "01" else None


def serial_of(canonical: str) -> str | None:
    """The serial (AI 21) of an SGTIN or ITIP, decoded; None when there is none."""
    ident = _recognise(canonical)
    return ident.qualifier("21") if ident is not None else None


def lot_of(canonical: str) -> str | None:
    """The lot (AI 10) of a lot class (LGTIN), decoded; None when there is none."""
    ident = _recognise(canonical)
    return ident.qualifier("10") if ident is not None else None


def gln_of(canonical: str) -> str | None:
    """The 13-digit GLN of an SGLN (location) or PGLN (party); None for other identifiers."""
    match = _CANONICAL_GLN.fullmatch(canonical)
    if match:
        return match.group(2)
    ident = _recognise(canonical)
    return ident.value if ident is not None and ident.ai in ("414", "417") else None


def ndc_from_gtin(gtin14: str) -> str:
    """The 10-digit US NDC carried by a GTIN-14 ``I 03 NNNNNNNNNN C`` (indicator, 03, NDC, check digit).

    The NDC's 4-4-2 / 5-3-2 / 5-4-1 hyphenation is not recoverable from the digits alone (it needs the
    FDA NDC directory), so the 10 digits are returned as they are.
    """
    _check_digits(gtin14, "GTIN-14", 14)
    _check_key(gtin14, "GTIN")
    if gtin14[1:3] != "03":
        raise IdentifierError(
            f"GTIN {gtin14} does not carry a US NDC: NDC-based GTIN-14s read <indicator>03<10-digit NDC><check>. "
            "Record the product's NDC from its labeling instead."
        )
    return gtin14[3:13]
