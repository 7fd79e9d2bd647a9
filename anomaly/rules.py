"""Deterministic detectors: what the ledger decides exactly (EU FMD alert classes, DSCSA red flags).

The facts they read are computed by the ledger replay (anomaly/ml/replay.py) from ledger entries earlier
than or equal to the transfer's own events, so a rule gives the same answer whenever it is run. Each hit is a
reason on a flag and a feature of the models. ``check`` is pure (no Django, no I/O).

References: domain.md §4.3 (EMVS/NMVS alert codes) and §5 (counterfeit and diversion patterns); DSCSA
suspect-product red flags (FDA guidance, 2016/2021).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Faster than any scheduled passenger jet door to door: not a truck, not a courier, not a plane.
MAX_PLAUSIBLE_KMH = 900.0
# Clocks of partners differ (a few minutes, sometimes hours): tolerate this much "received before shipped".
CLOCK_TOLERANCE_H = 0.5


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    reference: str
    action: str


RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule(
            "unknown_serial",
            "Serial never commissioned by its brand owner",
            "EU FMD NMVS_NC_PC_02; DSCSA suspect product (unknown product identifier)",
            "Quarantine the packs and verify the product identifiers with the manufacturer.",
        ),
        Rule(
            "unknown_lot",
            "Lot never commissioned",
            "EU FMD NMVS_FE_LOT_03",
            "Check the lot number against the manufacturer's records before selling on.",
        ),
        Rule(
            "inactive_serial",
            "Serial already dispensed, decommissioned or destroyed",
            "EU FMD NMVS_NC_PCK_22",
            "Treat as a possible clone or refill: quarantine and investigate.",
        ),
        Rule(
            "serial_two_custodians",
            "Serial shipped or received by a party that does not hold it",
            "DSCSA suspect product (serial cloning, diversion); domain.md §5.1",
            "Compare the serials with the last recorded custodian's stock.",
        ),
        Rule(
            "serial_intercepted",
            "Serials taken over in transit: their last shipment went to another party and never arrived",
            "DSCSA suspect product (stolen product, diversion); domain.md §5.4",
            "Ask the consignee of the earlier shipment whether it arrived; treat the packs as possibly stolen.",
        ),
        Rule(
            "shipment_diverted",
            "Shipment never received, and its packs later moved by another party",
            "DSCSA suspect product (cargo theft, diversion); FDA Form 3911",
            "Confirm with the consignee that it never arrived and report the loss; trace where the packs went.",
        ),
        Rule(
            "lot_mismatch",
            "Lot or expiry contradicts the serial's commissioning",
            "EU FMD NMVS_FE_LOT_13 / NMVS_FE_LOT_12",
            "Compare the packs' printed lot and expiry with the commissioning record.",
        ),
        Rule(
            "lot_not_by_brand",
            "Lot commissioned by a party that does not own the GTIN",
            "GS1 GTIN allocation; DSCSA product identifier",
            "Ask the brand owner whether this lot is theirs.",
        ),
        Rule(
            "expired_lot",
            "Expired lot moving in saleable distribution",
            "DSCSA; 21 CFR 211.137",
            "Stop the sale; expired product goes to a returns processor.",
        ),
        Rule(
            "recalled_lot",
            "Recalled lot moving in saleable distribution",
            "DSCSA; FDA recall (21 CFR Part 7)",
            "Stop the sale and return the product as the recall notice says.",
        ),
        Rule(
            "quantity_inflation",
            "More units received or shipped than the sender held or shipped",
            "CBV mismatch_quantity; domain.md §5.6",
            "Count the goods and reconcile the receipt with the shipment.",
        ),
        Rule(
            "impossible_travel",
            "Custody moved faster than possible, or was received before it was shipped",
            "domain.md §5.2 (clone detection from traces)",
            "Check both parties' event times and the physical shipment.",
        ),
        Rule(
            "unlicensed_partner",
            "A party without a valid licence or not an authorized trading partner",
            "DSCSA 582(b)(3), 582(c)(3), 582(d)(3): authorized trading partners only",
            "Do not trade with this party until its licence is verified.",
        ),
    )
}

# Rules whose hit raises a flag on its own, whatever the model's score: on the training and validation networks
# (never the test networks) they were right nearly always, and rarely hit a clean transfer (well under one in
# 1,000). The others are reasons and features: with realistic reporting noise (missing and late events, 3PL
# hops, administrative licence lapses, serials copied onto goods in transit) they were right less than half to
# three quarters of the time, so a flag from them waits for the model to agree.
FLAGGING = frozenset(
    {
        "unknown_serial",
        "unknown_lot",
        "inactive_serial",
        "serial_intercepted",
        "lot_mismatch",
        "expired_lot",
        "recalled_lot",
        "quantity_inflation",
        "impossible_travel",
    }
)


def check(facts: dict[str, float]) -> list[str]:
    """The codes of the rules these facts break, in catalogue order."""
    hits: list[str] = []
    f = facts.get
    if f("uncommissioned_serials", 0) or f("receipt_uncommissioned_serials", 0):
        hits.append("unknown_serial")
    if f("lot_given", 0) and not f("lot_known", 1) and not f("serials", 0):
        hits.append("unknown_lot")
    if f("inactive_serials", 0) or f("receipt_inactive_serials", 0):
        hits.append("inactive_serial")
    if f("strong_custody_conflicts", 0) or f("receipt_strong_custody_conflicts", 0):
        hits.append("serial_two_custodians")
    if f("intercepted_overdue_serials", 0) or f("receipt_intercepted_overdue_serials", 0):
        hits.append("serial_intercepted")
    if f("surfaced_elsewhere", 0) and not f("voided", 0):
        hits.append("shipment_diverted")
    if f("lot_mismatches", 0) or f("recommissioned_serials", 0):
        hits.append("lot_mismatch")
    if f("lot_by_brand", 1) == 0:
        hits.append("lot_not_by_brand")
    # non-saleable, back to the brand owner, or returned upstream (a recall's own flow): leaving the market
    leaving_market = f("nonsellable", 0) or f("to_brand", 0) or f("is_return", 0)
    if f("days_to_expiry", 1) < 0 and not leaving_market:
        hits.append("expired_lot")
    if f("lot_recalled", 0) and not leaving_market:
        hits.append("recalled_lot")
    if f("received_over", 0) > 0:
        hits.append("quantity_inflation")
    if (
        f("transit_h", 1) < -CLOCK_TOLERANCE_H
        or f("speed_kmh", 0) > MAX_PLAUSIBLE_KMH
        or f("serial_speed_kmh", 0) > MAX_PLAUSIBLE_KMH
    ):
        hits.append("impossible_travel")
    if not f("from_licensed", 1) or not f("to_licensed", 1):
        hits.append("unlicensed_partner")
    return hits


def _detail(code: str, facts: dict[str, float]) -> str:
    f = facts.get
    n = int(f("serials", 0))
    if code == "unknown_serial":
        k = int(max(f("uncommissioned_serials", 0), f("receipt_uncommissioned_serials", 0)))
        return f"{k} of {n} serials have no commissioning event before this transfer."
    if code == "unknown_lot":
        return "No commissioning event names this lot."
    if code == "inactive_serial":
        k = int(max(f("inactive_serials", 0), f("receipt_inactive_serials", 0)))
        return f"{k} of {n} serials were already dispensed, decommissioned or destroyed."
    if code == "serial_two_custodians":
        k = int(max(f("strong_custody_conflicts", 0), f("receipt_strong_custody_conflicts", 0)))
        return f"{k} of {n} serials were last recorded at a dispenser, or as dispensed, in another party's custody."
    if code == "serial_intercepted":
        k = int(max(f("intercepted_overdue_serials", 0), f("receipt_intercepted_overdue_serials", 0)))
        days = f("intercepted_days", 0)
        when = f" {days:.0f} days ago" if days else ""
        return f"{k} of {n} serials were last shipped to another party{when} and never received by it."
    if code == "shipment_diverted":
        return (
            f"Not received after {f('open_days', 0):.0f} days; {int(f('surfaced_elsewhere', 0))} of its packs "
            "have since been shipped or received by another party."
        )
    if code == "lot_mismatch":
        return (
            f"{int(f('lot_mismatches', 0))} serials were commissioned under another lot; "
            f"{int(f('recommissioned_serials', 0))} were commissioned a second time."
        )
    if code == "lot_not_by_brand":
        return "The lot's commissioning event was recorded by a party other than the GTIN's owner."
    if code == "expired_lot":
        return f"The lot expired {abs(f('days_to_expiry', 0)):.0f} days before this transfer."
    if code == "recalled_lot":
        return "A recall of this lot was recorded before this transfer."
    if code == "quantity_inflation":
        return f"Received {f('received_quantity', 0):g}, shipped {f('quantity', 0):g}."
    if code == "impossible_travel":
        parts = []
        if f("transit_h", 1) < -CLOCK_TOLERANCE_H:
            parts.append(f"received {abs(f('transit_h', 0)):.1f} h before it was shipped")
        speed = max(f("speed_kmh", 0), f("serial_speed_kmh", 0))
        if speed > MAX_PLAUSIBLE_KMH:
            parts.append(f"moved at {speed:,.0f} km/h")
        return "; ".join(parts).capitalize() + "."
    if code == "unlicensed_partner":
        who = [side for side in ("from", "to") if not f(f"{side}_licensed", 1)]
        unknown = [side for side in ("from", "to") if not f(f"{side}_known", 1)]
        text = f"The {' and '.join(who)} party is not a licensed, authorized trading partner"
        return text + (f" (unregistered: {', '.join(unknown)})." if unknown else ".")
    return ""


def reasons(codes: list[str], facts: dict[str, float]) -> list[dict[str, Any]]:
    """Rule hits as flag reasons: code, title, reference, what was seen, what to do."""
    return [
        {
            "code": code,
            "title": RULES[code].title,
            "reference": RULES[code].reference,
            "detail": _detail(code, facts),
            "action": RULES[code].action,
        }
        for code in codes
        if code in RULES
    ]


def rules_score(codes: list[str]) -> float:
    """The rules-only score: 0 without hits, rising towards 1 with the number of distinct hits."""
    return 0.0 if not codes else 1.0 - 0.5 ** (len(codes) + 1)
