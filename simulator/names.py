"""Synthetic business names: invented words, never a real company's name.

Names are built from syllables so they read like brands ("Velmora Pharmaceuticals") without
borrowing one; the test suite also checks them against the ARCOS reporter registry when it is
available.
"""

from __future__ import annotations

import random

_ONSETS = [
    "b",
    "c",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "cr",
    "dr",
    "tr",
    "st",
    "qu",
    "th",
    "sh",
]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ia", "io", "ea"]
_CODAS = ["", "", "", "n", "r", "l", "s", "x", "th", "nd", "rk", "v"]

SUFFIXES = {
    "manufacturer": ["Pharmaceuticals", "Pharma", "Laboratories", "Therapeutics", "Biologics", "Life Sciences"],
    "repackager": ["Unit Dose Services", "Repack Solutions", "Dose Packaging"],
    "national_wholesaler": ["Drug Distribution", "Health Supply", "Pharmaceutical Distributors"],
    "regional_wholesaler": ["Drug Company", "Wholesale Drug", "Pharma Supply"],
    "secondary_wholesaler": ["Rx Trading", "Pharma Source", "Medical Supply", "Rx Partners"],
    "3pl": ["Logistics", "Fulfillment Services", "Supply Chain Services"],
    "reverse_distributor": ["Returns Services", "Pharma Returns", "Reverse Logistics"],
    "chain": ["Drug", "Pharmacy", "Drugstores", "Health Mart"],
    "independent": ["Pharmacy", "Drug", "Apothecary", "Family Pharmacy", "Community Pharmacy"],
    "hospital": ["Medical Center", "Regional Hospital", "Health System", "Memorial Hospital"],
    "rogue": ["Rx Trading", "Pharma Source", "Medical Supply", "Global Pharma", "Health Supply"],
}


class NameMaker:
    """Deterministic, collision-free invented names."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def word(self, syllables: int | None = None) -> str:
        rng = self.rng
        for _ in range(1000):
            n = syllables or rng.choice((2, 2, 3))
            parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n)]
            parts[-1] += rng.choice(_CODAS)
            word = "".join(parts).capitalize()
            if 5 <= len(word) <= 11 and word not in self.used:
                self.used.add(word)
                return word
        raise RuntimeError("ran out of synthetic names")

    def business(self, role: str) -> str:
        return f"{self.word()} {self.rng.choice(SUFFIXES[role])}"
