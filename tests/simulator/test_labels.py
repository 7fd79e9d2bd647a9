"""Ground truth: every scenario present, labels consistent with the events, and kept out of them."""

from __future__ import annotations

import json
import re

from simulator.scenarios import SCENARIOS
from tests.simulator.conftest import Run

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
