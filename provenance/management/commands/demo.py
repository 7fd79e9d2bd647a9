"""`make demo`: build the whole product's data on the embedded default and print the accounts.

Uses the simulator when it is installed (simulate --scale tiny --load, then derive, train, score);
otherwise loads a small hand-made network through the real capture path. A second run reuses what
the first built.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.test import override_settings

from provenance import services
from provenance.epcis.identifiers import gs1_check_digit
from provenance.models import CustodyEvent, Organization

CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"cbvmda": "urn:epcglobal:cbv:mda:"}]


def _gln(prefix: str, ref: str) -> str:
    body = (prefix + ref).ljust(12, "0")[:12]
    return body + str(gs1_check_digit(body))


def _sgln(gln: str) -> str:
    return f"urn:epc:id:sgln:{gln[:7]}.{gln[7:12]}.0"


def _pgln(gln: str) -> str:
    return f"urn:epc:id:pgln:{gln[:7]}.{gln[7:12]}"


def _doc(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T00:00:00Z",
        "epcisBody": {"eventList": events},
    }


class Command(BaseCommand):
    help = "Load the demo network, derive, train and score; print the accounts it created."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hand-made", action="store_true", help="use the small hand-made network")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        accounts = self._accounts()
        if CustodyEvent.objects.exists():
            self.stdout.write("The ledger has events already: reusing them (delete data/ to start over).")
        elif options["hand_made"]:
            self._hand_made_network()
        else:
            self.stdout.write("Simulating a supply network with labelled scenarios (seed 7, tiny) ...")
            # no scoring while loading: the first scoring run below uses the model trained on this ledger
            with override_settings(ANOMALY_SCORE_ON_CAPTURE=False):
                call_command("simulate", "--seed", "7", "--scale", "tiny", "--load", stdout=self.stdout)
        self.stdout.write("Deriving transfers from the ledger ...")
        from provenance.derive import ledger_derive

        self.stdout.write(f"  {ledger_derive()} ledger entries processed")
        self._checkpoint()
        self._train_and_score()
        self.stdout.write(self.style.SUCCESS(f"Demo ready in {time.monotonic() - started:.1f}s."))
        self.stdout.write("Accounts:")
        for line in accounts:
            self.stdout.write(f"  {line}")
        self.stdout.write("Open http://127.0.0.1:8000/ (compliance UI), /admin/ and /api/docs/.")

    def _accounts(self) -> list[str]:
        user_model = get_user_model()
        lines = []
        for username, is_superuser in (("admin", True), ("compliance", False)):
            password = secrets.token_urlsafe(12)
            user, _created = user_model.objects.get_or_create(
                username=username, defaults={"is_staff": True, "is_superuser": is_superuser}
            )
            user.set_password(password)
            user.save()
            role = "administrator" if is_superuser else "compliance officer"
            lines.append(f"{role}: {username} / {password}")
        operator = services.organization_create(
            name="Demo Operator", gln=_gln("0999999", "00001"), kind=Organization.Kind.OPERATOR, is_operator=True
        )
        _, key = services.api_key_issue(organization=operator, name="demo operator key")
        lines.append(f"operator API key (Authorization: Bearer ...): {key}")
        return lines

    def _train_and_score(self) -> None:
        from anomaly.models import ModelVersion

        if not ModelVersion.objects.exists():
            self.stdout.write("Training the scorers on CPU (simulated networks + this ledger) ...")
            try:
                call_command(
                    "train_model",
                    "--scale",
                    "tiny",
                    # Two training networks keep the first demo run to a few minutes on a laptop;
                    # train_model's default is what the evaluation uses.
                    "--seeds",
                    "301-302",
                    "--max-epochs",
                    "3",
                    "--activate",
                    "--reason",
                    "demo set-up",
                    "--no-progress",
                    stdout=self.stdout,
                )
            except Exception as exc:  # scoring still runs, rules only, and the flags say so
                self.stderr.write(f"Training failed ({exc}); scoring with the rules only.")
        self._score()

    def _score(self) -> None:
        """Score through the Celery task the workers run (in-process on the embedded default)."""
        from anomaly.models import Flag
        from anomaly.services import active_model
        from anomaly.tasks import score_new_transfers

        version = active_model()
        scorer = f"model {version.kind} {version.version}" if version else "the rules only (no model is active)"
        self.stdout.write(f"Scoring transfers with {scorer} through the Celery task score_new_transfers ...")
        started = time.monotonic()
        result = score_new_transfers.delay(trigger="demo")
        try:
            scored = result.get(timeout=600)
        except Exception as exc:  # a worker that is not running: the sweep will score later
            self.stderr.write(f"Scoring did not finish here ({exc}); a scoring worker will catch up.")
            return
        flags = Flag.objects.filter(model_version=version) if version else Flag.objects.all()
        self.stdout.write(
            f"  {scored} transfers scored in {time.monotonic() - started:.1f}s; {flags.count()} flags "
            f"({Flag.objects.count()} in all) — review them at http://127.0.0.1:8000/"
        )

    def _checkpoint(self) -> None:
        try:
            call_command("checkpoint", stdout=self.stdout)
        except Exception as exc:  # the demo still serves without a signing key configured
            self.stdout.write(f"No checkpoint issued: {exc}")

    def _hand_made_network(self) -> None:
        self.stdout.write("Loading the hand-made demo network through the capture path ...")
        maker = services.organization_create(
            name="Northwind Pharma",
            gln=_gln("0312345", "00001"),
            kind=Organization.Kind.MANUFACTURER,
            company_prefixes=["0312345"],
        )
        wholesaler = services.organization_create(
            name="Great Plains Drug Supply",
            gln=_gln("0712345", "00001"),
            kind=Organization.Kind.WHOLESALER,
            company_prefixes=["0712345"],
        )
        pharmacies = [
            services.organization_create(
                name=name, gln=_gln(prefix, "00001"), kind=Organization.Kind.DISPENSER, company_prefixes=[prefix]
            )
            for name, prefix in (("Maple Street Pharmacy", "0812345"), ("Riverside Community Rx", "0812346"))
        ]
        coords = {
            maker: (40.49, -74.45),
            wholesaler: (39.10, -94.58),
            pharmacies[0]: (41.88, -87.63),
            pharmacies[1]: (38.63, -90.20),
        }
        for org, (lat, lon) in coords.items():
            services.location_create(sgln=_sgln(org.gln), organization=org, name=org.name, latitude=lat, longitude=lon)
        gtin_body = "0" + "0312345" + "01001"
        gtin = gtin_body + str(gs1_check_digit(gtin_body))
        services.product_create(
            gtin=gtin, ndc="0312345010", name="Amoxicillin 500 mg capsules, 30 ct", manufacturer=maker
        )
        serials = [f"urn:epc:id:sgtin:0312345.001001.{n:06d}" for n in range(1, 25)]
        case = "urn:epc:id:sscc:0312345.0000000001"
        m, w = maker.gln, wholesaler.gln

        def ev(step: str, when: str, epcs: list[str], at: str, **extra: Any) -> dict[str, Any]:
            event = {
                "type": "ObjectEvent",
                "eventTime": when,
                "eventTimeZoneOffset": "-05:00",
                "epcList": epcs,
                "action": "OBSERVE",
                "bizStep": step,
                "readPoint": {"id": _sgln(at)},
                "bizLocation": {"id": _sgln(at)},
            }
            event.update(extra)
            return event

        def move(frm: str, to: str) -> dict[str, Any]:
            return {
                "sourceList": [
                    {"type": "owning_party", "source": _pgln(frm)},
                    {"type": "location", "source": _sgln(frm)},
                ],
                "destinationList": [
                    {"type": "owning_party", "destination": _pgln(to)},
                    {"type": "location", "destination": _sgln(to)},
                ],
            }

        commission = ev(
            "commissioning",
            "2026-10-01T08:00:00-05:00",
            serials,
            m,
            action="ADD",
            disposition="active",
            ilmd={"cbvmda:lotNumber": "A2610", "cbvmda:itemExpirationDate": "2028-09-30"},
        )
        pack = {
            "type": "AggregationEvent",
            "eventTime": "2026-10-01T09:00:00-05:00",
            "eventTimeZoneOffset": "-05:00",
            "parentID": case,
            "childEPCs": serials[:12],
            "action": "ADD",
            "bizStep": "packing",
            "disposition": "in_progress",
            "readPoint": {"id": _sgln(m)},
        }
        ship = ev(
            "shipping", "2026-10-02T08:00:00-05:00", [case, *serials[12:]], m, disposition="in_transit", **move(m, w)
        )
        services.custody_events_capture(document=_doc([commission, pack, ship]), organization=maker)
        receive = ev(
            "receiving", "2026-10-04T10:00:00-05:00", [case, *serials[12:]], w, disposition="in_progress", **move(m, w)
        )
        unpack = {
            **pack,
            "action": "DELETE",
            "bizStep": "unpacking",
            "eventTime": "2026-10-04T11:00:00-05:00",
            "readPoint": {"id": _sgln(w)},
        }
        out = []
        for i, pharmacy in enumerate(pharmacies):
            chunk = serials[i * 6 : i * 6 + 6]
            out.append(
                ev(
                    "shipping",
                    f"2026-10-0{5 + i}T08:00:00-05:00",
                    chunk,
                    w,
                    disposition="in_transit",
                    **move(w, pharmacy.gln),
                )
            )
        services.custody_events_capture(document=_doc([receive, unpack, *out]), organization=wholesaler)
        for i, pharmacy in enumerate(pharmacies):
            chunk = serials[i * 6 : i * 6 + 6]
            events = [
                ev(
                    "receiving",
                    f"2026-10-0{6 + i}T15:00:00-05:00",
                    chunk,
                    pharmacy.gln,
                    disposition="in_progress",
                    **move(w, pharmacy.gln),
                ),
                ev("dispensing", f"2026-10-1{i}T12:00:00-05:00", chunk[:2], pharmacy.gln, disposition="dispensed"),
            ]
            services.custody_events_capture(document=_doc(events), organization=pharmacy)
