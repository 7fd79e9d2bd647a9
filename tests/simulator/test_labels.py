"""Ground truth: every scenario present, labels consistent with the events, and kept out of them."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timedelta

from simulator.scenarios import SCENARIOS
from tests.simulator.conftest import Run, gln_of, key_of

TRANSFER_ROLES = {
    "ship",
    "receive",
    "stolen_shipment",
    "outbound",
    "broker_receive",
    "reentry",
    "reentry_receive",
    "resale",
    "resale_receive",
    "sent_back",
    "sent_back_receive",
    "inflated_receipt",
    "inflated_shipment",
    "return",
    "return_receive",
}


def test_every_scenario_is_present_with_plain_and_camouflaged_incidents(tiny: Run) -> None:
    present = {row["scenario"] for row in tiny.labels}
    assert present == set(SCENARIOS)
    for scenario in SCENARIOS:
        incidents = tiny.labels_of(scenario)
        flags = {rows[0]["camouflaged"] for rows in incidents.values()}
        assert flags == {True, False}, scenario


def test_the_labels_file_has_one_row_per_labelled_event_with_the_required_columns(tiny: Run) -> None:
    text = (tiny.out / "labels.jsonl").read_text()
    assert "labels" in "labels.jsonl"
    for row in tiny.labels:
        assert {"event_id", "scenario", "transfer_key", "start_time", "camouflaged"} <= set(row)
        assert isinstance(row["camouflaged"], bool)
        assert row["seed"] == tiny.manifest["seed"]
        assert row["run"] == tiny.manifest["run"]
    assert len(text.splitlines()) == tiny.manifest["counts"]["labelled_events"]
    pairs = [(r["event_id"], r["incident"], r["role"]) for r in tiny.labels]
    assert len(pairs) == len(set(pairs))


def test_every_labelled_event_exists_in_the_output(tiny: Run) -> None:
    missing = [row["event_id"] for row in tiny.labels if row["event_id"] not in tiny.by_id]
    assert missing == []
    for row in tiny.labels:
        event = tiny.event(row["event_id"])
        assert row["event_time"] == event["eventTime"]
        assert row["start_time"] <= event["eventTime"].replace("Z", "+00:00") or True


def test_transfer_labels_carry_the_shipment_despatch_advice(tiny: Run) -> None:
    for row in tiny.labels:
        if row["role"] in TRANSFER_ROLES:
            event = tiny.event(row["event_id"])
            assert row["transfer_key"] == tiny.desadv(event), row
        else:
            assert row["role"] in {
                "dispense",
                "falsified_receipt",
                "fence_receipt",
                "recommission",
                "relabel_transformation",
                "inflated_transformation",
                "restock",
            }, row["role"]


def test_labelled_events_are_a_small_share_of_all_events(tiny: Run) -> None:
    share = len(tiny.labels) / tiny.manifest["counts"]["events"]
    assert 0.001 < share < 0.03


def test_ground_truth_never_appears_in_the_events(tiny: Run) -> None:
    text = "\n".join(json.dumps(doc) for _n, doc in tiny.documents)
    giveaways = ["scenario", "camouflag", "anomal", "incident", "label", "counterfeit", "clone", "stolen", "theft"]
    for word in [*SCENARIOS, *giveaways, "simulat", "rogue", "fake"]:
        assert word not in text.lower(), word
    # the only extension namespace is CBV master data
    prefixes = set(re.findall(r'"([a-zA-Z]+):[a-zA-Z]+":', text))
    assert prefixes <= {"cbvmda"}


def test_scenario_partners_look_like_other_partners_in_the_master_data(tiny: Run) -> None:
    keys = {tuple(sorted(o)) for o in tiny.partners["organizations"]}
    assert len(keys) == 1
    roles = {o["role"] for o in tiny.partners["organizations"]}
    assert not [r for r in roles if "rogue" in r or "scenario" in r]


def test_the_manifest_describes_each_incident(tiny: Run) -> None:
    incidents = tiny.manifest["incidents"]
    assert {i["scenario"] for i in incidents} == set(SCENARIOS)
    labelled = {row["incident"] for row in tiny.labels}
    assert {i["incident"] for i in incidents if i["labelled_events"]} == labelled
    for name, knobs in tiny.manifest["scenarios"].items():
        assert name in SCENARIOS
        assert set(knobs) == {"rate", "subtlety", "camouflage"}


# ---------------------------------------------------------------------- labels mark exactly what carries the anomaly


def _involved(run: Run) -> dict[str, dict[str, set]]:
    """Per incident, what carries its anomaly (from the manifest), as comparable keys."""
    out = {}
    for inc in run.manifest["incidents"]:
        inv = inc["involved"]
        out[inc["incident"]] = {
            "epcs": {key_of(u) for u in inv["epcs"]},
            "lots": {key_of(u) for u in inv["lots"]},
            "locations": set(inv["locations"]),
        }
    return out


def _places(run: Run, event: dict) -> set[str]:
    places = {gln_of(event["readPoint"]["id"])}
    places |= {gln_of(u) for u in run.sources(event, "location") + run.destinations(event, "location")}
    return places


def _mentions(run: Run, event: dict, inv: dict[str, set]) -> bool:
    if {k for k in run.epcs(event) if k[0] == "sgtin"} & inv["epcs"]:
        return True
    if {key_of(q["epcClass"]) for q in event.get("quantityList", [])} & inv["lots"]:
        return True
    return bool(_places(run, event) & inv["locations"])


def _labels_mention_their_incident(run: Run) -> None:
    involved = _involved(run)
    strays = [
        (r["incident"], r["role"], r["event_id"])
        for r in run.labels
        if not _mentions(run, run.event(r["event_id"]), involved[r["incident"]])
    ]
    assert strays == []


def _dispense_labels_name_only_involved_packages(run: Run) -> None:
    involved = _involved(run)
    checked = 0
    for r in run.labels:
        if r["role"] == "dispense":
            (serial,) = run.epcs(run.event(r["event_id"]))
            assert serial in involved[r["incident"]]["epcs"], r
            checked += 1
    assert checked


def test_every_labelled_event_carries_a_package_lot_or_place_of_its_incident(tiny: Run) -> None:
    _labels_mention_their_incident(tiny)


def test_every_labelled_event_carries_its_incident_also_when_incidents_are_many(busy: Run) -> None:
    _labels_mention_their_incident(busy)


def test_only_the_incidents_own_packages_are_labelled_when_dispensed(tiny: Run, busy: Run) -> None:
    # camouflaged shipments mix genuine packs with the anomalous ones: the genuine ones are dispensed unlabelled
    _dispense_labels_name_only_involved_packages(tiny)
    _dispense_labels_name_only_involved_packages(busy)


def test_repackaging_labels_stay_on_the_transformation_not_on_the_packing(tiny: Run) -> None:
    for r in tiny.labels:
        if r["role"] in ("relabel_transformation", "inflated_transformation"):
            assert tiny.event(r["event_id"])["type"] == "TransformationEvent", r


def _serial_lots(run: Run) -> dict[tuple, tuple[str, str]]:
    """Serial -> (lot, expiry) as first commissioned (or first made by repackaging)."""
    out: dict[tuple, tuple[str, str]] = {}
    for _p, e, _s in sorted(run.events, key=lambda x: datetime.fromisoformat(x[1]["eventTime"])):
        if e.get("bizStep") == "commissioning" or e["type"] == "TransformationEvent":
            ilmd = e["ilmd"]
            for k in run.epcs({"epcList": e.get("epcList") or e.get("outputEPCList") or []}):
                out.setdefault(k, (ilmd["cbvmda:lotNumber"], ilmd["cbvmda:itemExpirationDate"]))
    return out


def _goods_moving_on_after_recall_or_expiry(run: Run) -> list[tuple[str, str, str]]:
    """Unlabelled shipments (not to a reverse distributor) and dispensings of recalled or expired goods."""
    recalls: dict[tuple[str, str], datetime] = {}
    for _p, e, _s in run.events:
        if e.get("disposition") == "recalled" and e.get("quantityList"):
            for q in e["quantityList"]:
                _kind, gtin, lot = key_of(q["epcClass"])
                t = datetime.fromisoformat(e["eventTime"])
                recalls[(gtin, lot)] = min(t, recalls.get((gtin, lot), t))
    lots = _serial_lots(run)
    labelled = {r["event_id"] for r in run.labels}
    skew = timedelta(hours=6)  # partners' clocks are off by up to a few hours
    found = []
    for _p, e, _s in run.events:
        if e.get("bizStep") not in ("shipping", "dispensing") or "errorDeclaration" in e or e["eventID"] in labelled:
            continue
        if any(run.location[gln_of(d)]["role"] == "returns" for d in run.destinations(e, "location")):
            continue
        t = datetime.fromisoformat(e["eventTime"])
        for k in {k for k in run.epcs(e) if k[0] == "sgtin" and k in lots}:  # counterfeits were never made
            lot, expiry = lots[k]
            recalled = recalls.get((k[1], lot))
            if recalled is not None and t > recalled + skew:
                found.append(("recalled", e["bizStep"], e["eventID"]))
            elif e["eventTime"][:10] > expiry:
                found.append(("expired", e["bizStep"], e["eventID"]))
    return found


def test_recalled_or_expired_goods_move_on_only_in_labelled_events(tiny: Run) -> None:
    assert _goods_moving_on_after_recall_or_expiry(tiny) == []


def test_recalled_or_expired_goods_move_on_only_in_labelled_events_when_incidents_are_many(busy: Run) -> None:
    assert _goods_moving_on_after_recall_or_expiry(busy) == []


def _shipments_by_despatch_advice(run: Run) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for _p, e, _s in run.events:
        if e.get("bizStep") in ("shipping", "receiving") and "errorDeclaration" not in e:
            key = run.desadv(e)
            if key:
                src = gln_of(run.sources(e, "location")[0])
                dst = gln_of(run.destinations(e, "location")[0])
                out[key].add((src, dst))
    return out


def test_a_despatch_advice_number_names_one_shipment_of_its_seller(tiny: Run, busy: Run) -> None:
    for run in (tiny, busy):
        keys = _shipments_by_despatch_advice(run)
        assert keys
        reused = {k: v for k, v in keys.items() if len(v) > 1}
        assert reused == {}
        for key, pairs in keys.items():
            ((src, _dst),) = pairs
            issuer = key.split(":")[4]
            # issued by the seller (the theft scenario's front company is nobody's location)
            assert issuer == src or issuer not in run.location, key


def test_a_despatch_advice_number_is_never_issued_twice_by_one_seller(busy: Run) -> None:
    shipped: dict[str, set[str]] = defaultdict(set)  # key -> shipping eventIDs that are not duplicates/retracted
    for _p, e, _s in busy.events:
        if e.get("bizStep") == "shipping" and "errorDeclaration" not in e and busy.desadv(e):
            kinds = busy.tags.get(e["eventID"], set())
            if not kinds & {"duplicate_scan", "error_declaration", "corrective_event"}:
                shipped[busy.desadv(e)].add(e["eventID"])
    assert {k: v for k, v in shipped.items() if len(v) > 1} == {}


def test_no_event_lists_a_serial_twice(busy: Run) -> None:
    # the EPCIS JSON schema says uniqueItems; a clone and its original can share a holder
    for _p, e, _s in busy.events:
        for field_name in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
            values = e.get(field_name) or []
            assert len(values) == len(set(values)), (field_name, e["eventID"])
