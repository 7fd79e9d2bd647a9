"""The compliance UI through the test client: staff list and filter flags, read a flag's transfer, reasons,
explanation and events, and decide it with a reason; everyone else is sent to sign in or refused."""

from __future__ import annotations

import pytest
from django.test import Client

from anomaly import rules
from anomaly.models import Flag, FlagDecision
from anomaly.services import transfers_score
from tests import factories as f
from tests.anomaly.conftest import ALICE_GLN, BOB_GLN, CAROL_GLN, day, packs, reviewed_clones

pytestmark = pytest.mark.django_db


@pytest.fixture
def flags(alice, bob, carol, capture) -> list[Flag]:
    """A cloned serial (Carol ships to Bob a pack Alice already sold him) and packs nobody commissioned."""
    p = packs(3)
    capture(alice.client, f.commissioning(ALICE_GLN, p, when=day(1)))
    capture(alice.client, f.shipping(ALICE_GLN, BOB_GLN, p, when=day(2)))
    capture(carol.client, f.shipping(CAROL_GLN, BOB_GLN, p[:1], when=day(5)))
    capture(alice.client, f.shipping(ALICE_GLN, CAROL_GLN, packs(2, "N"), when=day(6)))
    transfers_score(trigger="test")
    return list(Flag.objects.order_by("id"))


@pytest.fixture
def clone(flags) -> Flag:
    return Flag.objects.get(from_organization__gln=CAROL_GLN)


@pytest.fixture
def officer(db, django_user_model):
    return django_user_model.objects.create_user(
        "officer", password="a-long-test-password", is_staff=True, first_name="Olivia", last_name="Officer"
    )


@pytest.fixture
def staff(officer) -> Client:
    client = Client()
    client.force_login(officer)
    return client


def listed(response) -> list[int]:
    return [flag.pk for flag in response.context["page"].object_list]


# ---------------------------------------------------------------------------------------------- who may see it


def test_anonymous_visitors_are_sent_to_sign_in(flags, client):
    for url in ("/", "/flags/", f"/flags/{flags[0].pk}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(f"/admin/login/?next={url}")


def test_signed_in_users_who_are_not_staff_are_refused(flags, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("visitor", password="a-long-test-password"))
    for url in ("/", "/flags/", f"/flags/{flags[0].pk}/"):
        assert client.get(url).status_code == 403
    refused = client.post(f"/flags/{flags[0].pk}/", {"status": "cleared", "reason": "I say so"})
    assert refused.status_code == 403
    assert not FlagDecision.objects.exists()


def test_an_anonymous_decision_is_sent_to_sign_in_and_writes_nothing(flags, client):
    response = client.post(f"/flags/{flags[0].pk}/", {"status": "cleared", "reason": "I say so"})
    assert response.status_code == 302
    assert not FlagDecision.objects.exists()


def test_a_decision_without_the_csrf_token_is_refused(flags, officer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(officer)
    response = client.post(f"/flags/{flags[0].pk}/", {"status": "cleared", "reason": "from another site"})
    assert response.status_code == 403
    assert not FlagDecision.objects.exists()


# ---------------------------------------------------------------------------------------------- overview and list


def test_the_overview_counts_flags_and_shows_the_top_open_ones(flags, clone, staff, officer):
    from anomaly.services import flag_decide

    flag_decide(flag=clone, status=Flag.Status.SUSPECT, actor=officer, reason="clone confirmed with Bob")
    response = staff.get("/")
    assert response.status_code == 200
    assert response.context["flag_counts"] == {"open": 1, "investigating": 0, "cleared": 0, "suspect": 1}
    assert [flag.pk for flag in response.context["top_open_flags"]] == [f.pk for f in flags if f.pk != clone.pk]
    html = response.content.decode()
    assert f'href="/flags/{clone.pk}/"' not in html  # decided: no longer among the open ones
    assert 'href="/flags/"' in html
    assert 'href="/admin/"' in html
    assert 'href="/api/docs/"' in html


def test_the_list_shows_flags_by_score_with_reasons_scorer_parties_and_lot(flags, clone, staff):
    response = staff.get("/flags/")
    assert response.status_code == 200
    expected = [flag.pk for flag in sorted(flags, key=lambda x: (-x.score, -x.pk))]
    assert listed(response) == expected
    html = response.content.decode()
    assert [html.index(f'href="/flags/{pk}/"') for pk in expected] == sorted(
        html.index(f'href="/flags/{pk}/"') for pk in expected
    )
    for flag in flags:
        for reason in flag.reasons:
            assert reason["title"] in html
    assert rules.RULES["serial_two_custodians"].title in html
    assert clone.scored_by in html
    assert CAROL_GLN in html
    assert BOB_GLN in html
    assert clone.transfer.gtin in html
    assert f"lot {clone.transfer.lot_number}" in html


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ("", {"clone", "uncommissioned"}),
        ("status=open", {"uncommissioned"}),
        ("status=suspect", {"clone"}),
        ("status=cleared", set()),
        ("min_score=0.99", set()),
        ("min_score=0", {"clone", "uncommissioned"}),
        (f"partner={BOB_GLN}", {"clone"}),
        (f"partner={ALICE_GLN}", {"uncommissioned"}),
        ("partner=carol", {"clone", "uncommissioned"}),  # part of a name, either side, any case
        ("partner=Bob+Pharm", {"clone"}),
        ("partner=Nobody", set()),
        ("lot=L1", {"clone"}),
        ("lot=L1&partner=Alice", set()),
    ],
)
def test_the_list_filters_by_status_score_partner_and_lot(flags, clone, staff, officer, query, who):
    from anomaly.services import flag_decide

    # the clone has been decided suspect; the uncommissioned packs' flag is still open

    flag_decide(flag=clone, status=Flag.Status.SUSPECT, actor=officer, reason="clone confirmed")
    names = {"clone": clone.pk, "uncommissioned": next(f.pk for f in flags if f.pk != clone.pk)}
    response = staff.get(f"/flags/?{query}")
    assert response.status_code == 200
    assert set(listed(response)) == {names[n] for n in who}


def test_the_list_filters_by_gtin(flags, clone, staff):
    response = staff.get(f"/flags/?gtin={clone.transfer.gtin}")
    assert set(listed(response)) == {f.pk for f in flags if f.transfer.gtin == clone.transfer.gtin}
    assert listed(staff.get("/flags/?gtin=00000000000000")) == []


@pytest.mark.parametrize(("query", "field"), [("min_score=high", "min_score"), ("status=closed", "status")])
def test_bad_filters_show_the_error_and_list_nothing(flags, staff, query, field):
    response = staff.get(f"/flags/?{query}")
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert listed(response) == []
    html = response.content.decode()
    assert response.context["form"].errors[field][0] in html.replace("&#x27;", "'")
    assert "Fix the filters" in html


def test_the_list_pages_and_keeps_the_filters(flags, staff, monkeypatch):
    from anomaly import views

    monkeypatch.setattr(views, "FLAGS_PER_PAGE", 1)
    first = staff.get("/flags/?status=open")
    assert len(listed(first)) == 1
    assert 'href="?status=open&amp;page=2"' in first.content.decode()
    second = staff.get("/flags/?status=open&page=2")
    assert len(listed(second)) == 1
    assert set(listed(first) + listed(second)) == {f.pk for f in flags}
    assert 'href="?status=open&amp;page=1"' in second.content.decode()


def test_the_list_takes_a_fixed_number_of_queries(flags, staff, django_assert_max_num_queries):
    # session, user, count, page: the parties, lot and model come with the flags
    with django_assert_max_num_queries(6):
        assert staff.get("/flags/").status_code == 200


# ---------------------------------------------------------------------------------------------- a flag


def test_a_flag_shows_its_transfer_reasons_explanation_and_events(clone, staff):
    response = staff.get(f"/flags/{clone.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    transfer = clone.transfer
    assert "Carol Distribution" in html
    assert CAROL_GLN in html
    assert BOB_GLN in html
    assert transfer.gtin in html
    assert f"lot {transfer.lot_number}" in html
    assert f"<dd>{transfer.quantity:g}</dd>" in html
    assert transfer.ship_time.isoformat() in html
    reason = clone.reasons[0]
    assert reason["code"] == "serial_two_custodians"
    for key in ("title", "reference", "detail", "action"):
        assert reason[key]
        assert reason[key].replace("'", "&#x27;") in html
    assert clone.explanation["method"] == "rules"
    assert clone.explanation["note"] in html  # rules only, and it says so
    assert clone.explanation["facts"]
    for name in clone.explanation["facts"]:
        assert f'<td class="mono">{name}</td>' in html
    assert clone.event_ids
    for event_id in clone.event_ids:
        assert event_id in html
    assert "No decision yet." in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_each_event_links_to_its_epcis_json(clone, staff):
    links = [e["url"] for e in staff.get(f"/flags/{clone.pk}/").context["events"]]
    assert len(links) == len(clone.event_ids)
    for link, event_id in zip(links, clone.event_ids, strict=True):
        assert f'href="{link}"' in staff.get(f"/flags/{clone.pk}/").content.decode()
        event = staff.get(link)
        assert event.status_code == 200, event.content
        assert event.json()["eventID"] == event_id


def test_an_unknown_flag_is_not_found(flags, staff):
    assert staff.get("/flags/999999/").status_code == 404


# ---------------------------------------------------------------------------------------------- deciding


def test_staff_decide_a_flag_with_a_reason_and_see_it_in_the_history(clone, staff, officer):
    response = staff.post(f"/flags/{clone.pk}/", {"status": "suspect", "reason": "Carol cannot show a T3"})
    assert response.status_code == 302
    assert response["Location"] == f"/flags/{clone.pk}/"
    clone.refresh_from_db()
    assert clone.status == Flag.Status.SUSPECT
    decision = FlagDecision.objects.get()
    assert (decision.flag_id, decision.status, decision.actor, decision.reason) == (
        clone.pk,
        "suspect",
        officer,
        "Carol cannot show a T3",
    )
    page = staff.get(response["Location"])
    html = page.content.decode()
    assert f"Flag {clone.pk} is now suspect" in html  # the message after the redirect
    assert "officer (Olivia Officer)" in html
    assert "Carol cannot show a T3" in html
    assert decision.at.isoformat() in html
    assert "No decision yet." not in html
    assert staff.get("/flags/?status=suspect").context["page"].object_list[0].pk == clone.pk


def test_the_audit_trail_records_who_moved_the_flag_and_why(clone, staff, officer):
    from django.db import connection

    from provenance.audit import audit_trail

    staff.post(f"/flags/{clone.pk}/", {"status": "suspect", "reason": "Carol cannot show a T3"})
    records = list(audit_trail(model=Flag, object_ids=[clone.pk]))
    if connection.vendor != "postgresql":
        assert records == []  # SQLite keeps no audit trail (docs/audit.md); the decision row is the record
        return
    changed = records[-1]
    assert changed.changes["status"] == ("open", "suspect")
    assert changed.context["username"] == officer.username
    assert changed.reason == "Carol cannot show a T3"


def test_decisions_are_listed_oldest_first(clone, staff):
    for status, reason in (("investigating", "asked Carol for the T3"), ("cleared", "T3 received and checked")):
        assert staff.post(f"/flags/{clone.pk}/", {"status": status, "reason": reason}).status_code == 302
    decisions = staff.get(f"/flags/{clone.pk}/").context["decisions"]
    assert [(d.status, d.reason) for d in decisions] == [
        ("investigating", "asked Carol for the T3"),
        ("cleared", "T3 received and checked"),
    ]
    assert Flag.objects.get(pk=clone.pk).status == Flag.Status.CLEARED


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"status": "suspect", "reason": ""}, "reason", "This field is required."),
        ({"status": "suspect", "reason": "   \n "}, "reason", "This field is required."),
        ({"reason": "no status chosen"}, "status", "This field is required."),
        ({"status": "open", "reason": "reopen"}, "status", "Select a valid choice."),
        ({"status": "closed", "reason": "made up"}, "status", "Select a valid choice."),
    ],
)
def test_a_bad_decision_shows_the_error_by_its_field_and_writes_nothing(clone, staff, data, field, message):
    response = staff.post(f"/flags/{clone.pk}/", data)
    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == [field]
    assert form.errors[field][0].startswith(message)
    html = response.content.decode()
    # the error list is rendered right after its field's widget
    widget_end = html.index("</textarea>") if field == "reason" else html.index("</legend>")
    error_at = html.index('<ul class="errorlist', widget_end)
    assert message in html[error_at : error_at + 300]
    assert not FlagDecision.objects.exists()
    assert Flag.objects.get(pk=clone.pk).status == Flag.Status.OPEN
    if data.get("reason", "").strip():
        assert data["reason"] in html  # what the reviewer typed is kept for the next try


@pytest.fixture
def model_scored(alice, bob, carol, located, capture, officer, settings, tmp_path) -> Flag:
    """Ten ordinary shipments and three clones, decided by a reviewer, a model trained on those labels
    (LightGBM, one fast epoch), and the transfers rescored by it: flags explained by TreeSHAP."""
    from io import StringIO

    from django.core.management import call_command

    from anomaly.models import SCORE_WATERMARK
    from provenance.models import Watermark

    settings.MODEL_DIR = tmp_path / "models"
    reviewed_clones(alice, bob, carol, capture, officer)
    call_command(
        "train_model",
        *("--no-simulated", "--fast-dev-run", "--no-progress", "--max-epochs", "1"),
        *("--components", "lightgbm_all", "--production", "lightgbm_all", "--activate", "--actor", "test"),
        stdout=StringIO(),
    )
    Watermark.objects.filter(name=SCORE_WATERMARK).update(seq=0)
    transfers_score(trigger="test")
    return Flag.objects.filter(model_version__isnull=False, from_organization=carol.organization).first()


def test_a_model_scored_flag_shows_its_features_and_neighbouring_transfers(model_scored, staff):
    flag = model_scored
    assert flag is not None
    explanation = flag.explanation
    assert explanation["method"] == "treeshap"
    assert explanation["features"]
    assert explanation["neighbours"]
    response = staff.get(f"/flags/{flag.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert flag.model_version.version in html
    assert "No model is active" not in html
    assert "treeshap" in html
    for feature in explanation["features"]:
        assert f'<td class="mono">{feature["feature"]}</td><td class="num">{feature["value"]}</td>' in html
        assert f'<td class="num">{feature["contribution"]}</td>' in html
    assert explanation["neighbour_method"] in html
    for neighbour in explanation["neighbours"]:
        assert f"<tr><td>{neighbour['transfer']}</td><td>{neighbour['relation']}</td>" in html
        for event_id in neighbour["event_ids"]:
            assert f">{event_id}</a>" in html
    neighbour_links = [e["url"] for n in response.context["explanation"]["neighbours"] for e in n["events"]]
    assert neighbour_links
    assert staff.get(neighbour_links[0]).status_code == 200


# ---------------------------------------------------------------------------------------------- in a real browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def page(monkeypatch):
    """A headless Debian Chromium driven by Playwright (skips where either is missing)."""
    from pathlib import Path

    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from django.db import connections

    # Playwright's sync API runs an event loop in this thread; the test still reads the database from it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()
            # With that loop running, Django keeps this thread's connections per context: close the ones opened
            # here, or PostgreSQL refuses to drop the test database at the end of the session.
            connections.close_all()


@pytest.mark.browser
def test_an_officer_signs_in_opens_a_flag_and_records_a_decision(live_server, page, clone, officer):
    page.goto(f"{live_server.url}/flags/")
    assert "/admin/login/" in page.url  # sent to sign in first
    page.fill("#id_username", "officer")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/flags/")
    page.click(f'a[href="/flags/{clone.pk}/"]')
    page.wait_for_url(f"{live_server.url}/flags/{clone.pk}/")
    assert page.locator("#reasons").inner_text().count(clone.reasons[0]["title"]) == 1
    assert clone.explanation["note"] in page.locator("#explanation").inner_text()
    page.check("input[name=status][value=suspect]")
    page.fill("#id_reason", "Carol cannot show a transaction history for this serial")
    page.click("button[type=submit]")
    page.wait_for_selector(".messages li")
    assert f"Flag {clone.pk} is now suspect" in page.inner_text(".messages")
    history = page.locator("#decisions tbody tr").all_inner_texts()
    assert len(history) == 1
    assert "officer (Olivia Officer)" in history[0]
    assert "Carol cannot show a transaction history for this serial" in history[0]
    decision = FlagDecision.objects.get()
    assert (decision.actor, decision.status) == (officer, "suspect")
    assert Flag.objects.get(pk=clone.pk).status == Flag.Status.SUSPECT
