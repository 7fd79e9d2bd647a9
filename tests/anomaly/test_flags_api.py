"""GET /api/flags and /api/flags/{id}: compliance staff and operator keys read them; partners and anonymous
callers never do. Filters, pagination, and the eventIDs each flag concerns."""

from __future__ import annotations

import pytest

from anomaly.models import Flag
from anomaly.services import transfers_score
from tests import factories as f
from tests.anomaly.conftest import ALICE_GLN, BOB_GLN, CAROL_GLN, day, packs

pytestmark = pytest.mark.django_db


@pytest.fixture
def flags(alice, bob, carol, capture):
    p = packs(3)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    capture(carol.client, f.shipping(CAROL_GLN, BOB_GLN, p[:1], when=day(5)))  # clone
    capture(alice.client, f.shipping(ALICE_GLN, CAROL_GLN, packs(2, "N"), when=day(6)))  # never commissioned
    transfers_score(trigger="test")
    return list(Flag.objects.order_by("id"))


@pytest.mark.parametrize(
    ("who", "expected"),
    [("staff_client", 200), ("operator", 200), ("alice", 403), ("bob", 403), ("anonymous", 401)],
)
def test_only_staff_and_operator_keys_read_flags(request, flags, who, expected):
    fixture = request.getfixturevalue(who)
    client = getattr(fixture, "client", fixture)
    listing = client.get("/api/flags")
    detail = client.get(f"/api/flags/{flags[0].pk}")
    assert listing.status_code == expected
    assert detail.status_code == expected
    if expected != 200:
        assert listing["Content-Type"] == "application/problem+json"


def test_a_signed_in_user_who_is_not_staff_is_refused(flags, client, django_user_model):
    user = django_user_model.objects.create_user("visitor", password="a-long-test-password")
    client.force_login(user)
    assert client.get("/api/flags").status_code == 403


def test_an_operator_key_without_query_scope_is_refused(flags):
    from tests.conftest import _party

    integration = _party(name="Integration", gln="0614142000004", prefix="0614142", operator=True, can_query=False)
    assert integration.client.get("/api/flags").status_code == 403


def test_a_flag_names_its_events_reasons_and_scorer(flags, staff_client):
    body = staff_client.get(f"/api/flags/{flags[0].pk}").json()
    assert body["status"] == "open"
    assert body["model_version"] is None
    assert body["scored_by"].startswith("rules only")
    assert body["event_ids"]
    assert all(e.startswith(("urn:uuid:", "ni:")) for e in body["event_ids"])
    assert body["reasons"][0]["code"] == "serial_two_custodians"
    assert "facts" in body["explanation"]
    assert body["transfer"]["gtin"]
    assert body["from_organization"]["gln"] == CAROL_GLN


def test_flags_filter_by_status_score_partner_lot_and_time(flags, staff_client, operator, carol):
    assert staff_client.get("/api/flags").json()["count"] == 2
    Flag.objects.filter(pk=flags[0].pk).update(status=Flag.Status.SUSPECT)
    assert [x["id"] for x in staff_client.get("/api/flags?status=suspect").json()["results"]] == [flags[0].pk]
    assert staff_client.get("/api/flags?status=open,investigating").json()["count"] == 1
    assert staff_client.get("/api/flags?min_score=0.99").json()["count"] == 0
    assert staff_client.get(f"/api/flags?partner={BOB_GLN}").json()["count"] == 1
    assert staff_client.get(f"/api/flags?partner={carol.organization.pk}").json()["count"] == 2
    assert staff_client.get("/api/flags?lot=L1").json()["count"] == 1  # never-commissioned packs have no lot
    assert staff_client.get("/api/flags?created_after=2999-01-01T00:00:00Z").json()["count"] == 0
    page = operator.client.get("/api/flags?page_size=1").json()
    assert page["count"] == 2
    assert len(page["results"]) == 1
    assert page["next"]


def test_bad_filters_are_refused_with_a_problem(flags, staff_client):
    for query in ("status=closed", "min_score=high", "created_after=yesterday"):
        response = staff_client.get(f"/api/flags?{query}")
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"]


def test_an_unknown_flag_is_not_found(flags, staff_client):
    response = staff_client.get("/api/flags/999999")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_listing_flags_takes_a_fixed_number_of_queries(flags, staff_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        staff_client.get("/api/flags")
