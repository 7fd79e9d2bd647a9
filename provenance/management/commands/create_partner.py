from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provenance import services
from provenance.models import Organization
from provenance.problems import ProblemError


class Command(BaseCommand):
    help = "Create a trading partner and print one new API key on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--gln", required=True, help="13-digit party GLN with a valid check digit")
        parser.add_argument("--operator", action="store_true", help="may capture events for any party")
        parser.add_argument("--kind", default=Organization.Kind.WHOLESALER, choices=Organization.Kind.values)
        parser.add_argument("--company-prefix", action="append", default=[], dest="company_prefixes")
        parser.add_argument("--query-only", action="store_true", help="the key may query but not capture")
        parser.add_argument("--expires-days", type=int, default=365)

    def handle(self, *args: Any, **options: Any) -> None:
        from datetime import timedelta

        from django.utils import timezone

        try:
            organization = services.organization_create(
                name=options["name"],
                gln=options["gln"],
                kind=Organization.Kind.OPERATOR if options["operator"] else options["kind"],
                company_prefixes=options["company_prefixes"],
                is_operator=options["operator"],
            )
        except ProblemError as exc:
            raise CommandError(exc.problem["detail"]) from exc
        if organization.is_operator != options["operator"]:
            raise CommandError(
                f"An organization with GLN {organization.gln} exists already as "
                f"{'an operator' if organization.is_operator else 'a partner'}; not changed."
            )
        _, key = services.api_key_issue(
            organization=organization,
            name=f"{organization.name} key",
            can_capture=not options["query_only"],
            expires_at=timezone.now() + timedelta(days=options["expires_days"]),
        )
        self.stdout.write(f"Organization {organization.name} (GLN {organization.gln}, id {organization.pk}).")
        self.stdout.write("API key (shown once, store it now; send it as 'Authorization: Bearer <key>'):")
        self.stdout.write(key)
