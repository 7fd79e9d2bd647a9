"""GS1 keys for the simulator: GTIN from NDC, GLN, SSCC, and their EPC URN / Digital Link forms.

Check digits: provenance.epcis.identifiers.gs1_check_digit's algorithm, written out here as a loop that mypyc
compiles (that module runs interpreted, and every SSCC needs a check digit).
"""

from __future__ import annotations

DL = "https://id.gs1.org"


def with_check(digits: str) -> str:
    return digits + str(check_digit(digits))


def check_digit(digits: str) -> int:
    """Mod-10 check digit of a GS1 key without its check digit: weights 3,1,3,1... from the rightmost digit (the
    same as provenance.epcis.identifiers.gs1_check_digit, which the simulator's tests check its keys against)."""
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"GS1 keys are digits only, got {digits!r}")
    total = 0
    weight = 3
    for i in range(len(digits) - 1, -1, -1):
        total += weight * (ord(digits[i]) - 48)
        weight = 4 - weight
    return (10 - total % 10) % 10


def gtin_from_ndc(ndc10: str) -> str:
    """US NDC-based GTIN-14: indicator 0, then "03" + the 10-digit NDC, then the check digit."""
    digits = ndc10.replace("-", "")
    if len(digits) != 10 or not digits.isdigit():
        raise ValueError(f"NDC must have 10 digits, got {ndc10!r}")
    return with_check("0" + "03" + digits)


class Company:
    """A GS1 company prefix and the keys it issues (GLNs, SSCCs)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        if not prefix.isdigit() or not 6 <= len(prefix) <= 12:
            raise ValueError(f"bad GS1 company prefix {prefix!r}")
        self.prefix = prefix

    def gln(self, ref: int) -> str:
        # str.zfill, not f"{ref:0{width}d}": compiled with mypyc, a nested format spec is a slow str.format call
        return with_check(self.prefix + str(ref).zfill(12 - len(self.prefix)))

    def sscc(self, ref: int, extension: int = 0) -> str:
        width = 16 - len(self.prefix)
        return with_check(str(extension) + self.prefix + str(ref % 10**width).zfill(width))


def gln_ref(gln: str, prefix: str) -> str:
    return gln[len(prefix) : 12]


def sgln(gln: str, prefix: str, digital_link: bool, extension: str = "0") -> str:
    if digital_link:
        return f"{DL}/414/{gln}" if extension == "0" else f"{DL}/414/{gln}/254/{extension}"
    return f"urn:epc:id:sgln:{prefix}.{gln_ref(gln, prefix)}.{extension}"


def pgln(gln: str, prefix: str, digital_link: bool) -> str:
    if digital_link:
        return f"{DL}/417/{gln}"
    return f"urn:epc:id:pgln:{prefix}.{gln_ref(gln, prefix)}"


def sgtin_prefix(gtin: str, prefix_len: int, digital_link: bool) -> str:
    """Everything of an SGTIN but the serial."""
    if digital_link:
        return f"{DL}/01/{gtin}/21/"
    cp = gtin[1 : 1 + prefix_len]
    item_ref = gtin[0] + gtin[1 + prefix_len : 13]
    return f"urn:epc:id:sgtin:{cp}.{item_ref}."


def lgtin(gtin: str, prefix_len: int, lot: str, digital_link: bool) -> str:
    if digital_link:
        return f"{DL}/01/{gtin}/10/{lot}"
    cp = gtin[1 : 1 + prefix_len]
    item_ref = gtin[0] + gtin[1 + prefix_len : 13]
    return f"urn:epc:class:lgtin:{cp}.{item_ref}.{lot}"


def sscc_epc(sscc18: str, prefix_len: int, digital_link: bool) -> str:
    if digital_link:
        return f"{DL}/00/{sscc18}"
    cp = sscc18[1 : 1 + prefix_len]
    serial_ref = sscc18[0] + sscc18[1 + prefix_len : 17]
    return f"urn:epc:id:sscc:{cp}.{serial_ref}"


def biz_transaction(gln: str, number: str) -> str:
    """CBV 2.0 business-transaction URI issued by the party with this GLN."""
    return f"urn:epcglobal:cbv:bt:{gln}:{number}"


# Serial numbers: a bijection of the package number, so serials look random, never collide within a
# GTIN, and need no storage. DSCSA allows up to 20 alphanumerics. Two multiply-xorshift rounds on 40
# bits (each step invertible) hide the order in which packages were made; engine.serial_numbers applies
# them to a product's packages at once and engine.serial_text prints 13 digits or 10 hex characters.
_MASK40 = (1 << 40) - 1
_M1 = 0x9E3779B97F & _MASK40 | 1
_M2 = 0xBF58476D1D & _MASK40 | 1
