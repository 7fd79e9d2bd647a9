"""GS1 identifiers: check digits, EPC URN <-> GS1 Digital Link, canonical forms."""

from __future__ import annotations


def gs1_check_digit(digits: str) -> int:
    """Mod-10 check digit of a GS1 key without its check digit (GTIN, GLN, SSCC).

    Weights 3,1,3,1... from the rightmost data digit.
    """
    if not digits.isdigit():
        raise ValueError(f"GS1 keys are digits only, got {digits!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def has_valid_check_digit(key: str) -> bool:
    """True when the last digit of a full GS1 key is its correct check digit."""
    return len(key) >= 2 and key.isdigit() and gs1_check_digit(key[:-1]) == int(key[-1])
