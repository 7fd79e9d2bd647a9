"""Provenance core: trading partners, master data, the custody-event ledger and derived transfers.

The ledger (CustodyEvent) is the source of truth. Identifiers are stored in canonical GS1 Digital
Link form (https://id.gs1.org/...), so a query in URN or Digital Link form finds the same rows.
Nothing about patients is stored anywhere (docs/data-map.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class Organization(models.Model):
    """A trading partner (DSCSA: manufacturer, repackager, wholesale distributor, 3PL, dispenser)."""

    class Kind(models.TextChoices):
        MANUFACTURER = "manufacturer"
        REPACKAGER = "repackager"
        WHOLESALER = "wholesaler"
        THIRD_PARTY_LOGISTICS = "3pl"
        DISPENSER = "dispenser"
        HOSPITAL = "hospital"
        OPERATOR = "operator"

    class LicenceStatus(models.TextChoices):
        ACTIVE = "active"
        EXPIRED = "expired"
        REVOKED = "revoked"
        NONE = "none"

    name = models.CharField(max_length=200)
    gln = models.CharField("party GLN", max_length=13, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WHOLESALER)
    licence_number = models.CharField(max_length=64, blank=True)
    licence_state = models.CharField(max_length=2, blank=True)
    licence_expires = models.DateField(null=True, blank=True)
    licence_status = models.CharField(max_length=8, choices=LicenceStatus.choices, default=LicenceStatus.ACTIVE)
    authorized_trading_partner = models.BooleanField(
        default=True, help_text="DSCSA authorized-trading-partner status (registered / licensed)."
    )
    is_operator = models.BooleanField(
        default=False, help_text="Operator organizations may capture events for any party (bulk loads, integrations)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.gln})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The party GLN is written into every ledger entry this partner submits: changing it would
        # make their history unverifiable. A new GLN is a new organization.
        if self.pk is not None:
            stored = Organization.objects.filter(pk=self.pk).values_list("gln", flat=True).first()
            if stored is not None and stored != self.gln:
                raise ValidationError(
                    {"gln": f"The GLN of an organization cannot change (it is {stored}); create a new organization."}
                )
        super().save(*args, **kwargs)


class CompanyPrefix(models.Model):
    """A GS1 company prefix registered to a partner: gives the prefix length needed to write URNs."""

    prefix = models.CharField(max_length=12, unique=True)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="company_prefixes")

    class Meta:
        verbose_name_plural = "company prefixes"

    def __str__(self) -> str:
        return self.prefix


class Location(models.Model):
    """A physical location identified by an SGLN (GLN + extension)."""

    sgln = models.CharField("SGLN (canonical Digital Link)", max_length=120, unique=True)
    gln = models.CharField(max_length=13, db_index=True)
    extension = models.CharField(max_length=20, blank=True, default="")
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="locations", null=True, blank=True
    )
    name = models.CharField(max_length=200, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    county_fips = models.CharField(max_length=5, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name or self.sgln


class Product(models.Model):
    gtin = models.CharField("GTIN-14", max_length=14, unique=True)
    ndc = models.CharField("NDC", max_length=13, blank=True, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    manufacturer = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="products", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name or self.gtin


class Lot(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lots")
    lot_number = models.CharField(max_length=20)
    expiry = models.DateField(null=True, blank=True)
    commissioned_seq = models.BigIntegerField(null=True, blank=True, help_text="Ledger seq of the first commissioning.")
    recalled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "lot_number"], name="lot_unique_per_product")]

    def __str__(self) -> str:
        return f"{self.product.gtin} lot {self.lot_number}"


class SerializedPackage(models.Model):
    """A saleable unit (SGTIN). State is derived from the ledger and can be rebuilt from it."""

    sgtin = models.CharField("SGTIN (canonical Digital Link)", max_length=120, unique=True)
    gtin = models.CharField(max_length=14, db_index=True)
    serial = models.CharField(max_length=20)
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, null=True, blank=True, related_name="packages")
    parent = models.CharField("current container (SSCC or SGTIN)", max_length=120, blank=True, db_index=True)
    state = models.CharField(max_length=24, blank=True, default="")
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()

    def __str__(self) -> str:
        return self.sgtin


class LogisticUnit(models.Model):
    """A case or pallet (SSCC)."""

    sscc = models.CharField("SSCC (canonical Digital Link)", max_length=120, unique=True)
    parent = models.CharField(max_length=120, blank=True, db_index=True)
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()

    def __str__(self) -> str:
        return self.sscc


class PartnerApiKey(AbstractAPIKey):
    """An API key of an organization: shown once, stored hashed, scoped, expiring, revocable."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    can_capture = models.BooleanField(default=True)
    can_query = models.BooleanField(default=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "partner API key"
        verbose_name_plural = "partner API keys"


class CaptureDocument(models.Model):
    """The bytes of an accepted document exactly as received (append-only)."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    body = models.BinaryField()
    size = models.IntegerField()
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.sha256


class CaptureJob(models.Model):
    """The EPCIS capture job resource (GET /epcis/capture/{captureID})."""

    class Behaviour(models.TextChoices):
        ROLLBACK = "rollback"
        PROCEED = "proceed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="capture_jobs")
    api_key_id = models.CharField(max_length=150, blank=True)
    behaviour = models.CharField(max_length=8, choices=Behaviour.choices, default=Behaviour.ROLLBACK)
    document_sha256 = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    running = models.BooleanField(default=True)
    success = models.BooleanField(default=False)
    event_count = models.IntegerField(default=0)
    recorded_count = models.IntegerField(default=0)
    first_seq = models.BigIntegerField(null=True, blank=True)
    last_seq = models.BigIntegerField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "document_sha256"], name="capturejob_org_doc")]


class LedgerHead(models.Model):
    """The single sequencer row: holding its lock is what makes sequence numbers gap-free."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    tree_size = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)


class CustodyEvent(models.Model):
    """One accepted EPCIS event: immutable, sequenced, with the event exactly as received.

    The ORM sees ``seq`` as the primary key; on PostgreSQL the table's key is (seq, record_time)
    so it can be partitioned by record time later without rewriting it (docs/architecture.md).
    Uniqueness of eventIDs and event hashes lives in EventKey for the same reason.
    """

    seq = models.BigIntegerField(primary_key=True)
    record_time = models.DateTimeField()
    event_id = models.CharField(max_length=300, db_index=True)
    event_hash = models.CharField(max_length=100, db_index=True)
    event_type = models.CharField(max_length=24)
    action = models.CharField(max_length=8, blank=True)
    event_time = models.DateTimeField(db_index=True)
    event_time_zone_offset = models.CharField(max_length=6)
    biz_step = models.CharField(max_length=200, blank=True, db_index=True)
    disposition = models.CharField(max_length=200, blank=True, db_index=True)
    read_point = models.CharField(max_length=200, blank=True, db_index=True)
    biz_location = models.CharField(max_length=200, blank=True, db_index=True)
    is_error_declaration = models.BooleanField(default=False)
    submitter = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+", db_index=True)
    api_key_id = models.CharField(max_length=150, blank=True)
    capture_job_id = models.UUIDField(null=True, blank=True)
    document_sha256 = models.CharField(max_length=64)
    document_index = models.IntegerField()
    body = models.JSONField(help_text="The event object exactly as received.")
    body_sha256 = models.CharField(
        max_length=64, help_text="SHA-256 of the event as received (canonical JSON); part of the ledger entry."
    )
    context = models.JSONField(default=list, help_text="The document's @context, needed to read extensions.")

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["record_time"], name="custodyevent_record_time")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type} {self.event_id}"


class EventKey(models.Model):
    """Global uniqueness of eventIDs and CBV event hashes (keeps the ledger table partitionable)."""

    class Kind(models.TextChoices):
        EVENT_ID = "id"
        HASH = "hash"
        RETRACTION = "retr"

    key = models.CharField(max_length=300, primary_key=True)
    kind = models.CharField(max_length=4, choices=Kind.choices)
    seq = models.BigIntegerField()


class EventEPC(models.Model):
    """Normalised identifiers of an event, for MATCH_* queries and custody look-ups."""

    class Role(models.TextChoices):
        EPC = "epc"
        PARENT = "parent"
        CHILD = "child"
        INPUT = "input"
        OUTPUT = "output"
        CLASS = "class"
        INPUT_CLASS = "input_class"
        OUTPUT_CLASS = "output_class"
        CHILD_CLASS = "child_class"

    seq = models.BigIntegerField(db_index=True)
    role = models.CharField(max_length=12, choices=Role.choices)
    epc = models.CharField(max_length=200)
    quantity = models.FloatField(null=True, blank=True)
    uom = models.CharField(max_length=8, blank=True)

    class Meta:
        indexes = [models.Index(fields=["epc", "seq"], name="eventepc_epc_seq")]


class EventParty(models.Model):
    """Source/destination entries of an event (owning_party, possessing_party, location)."""

    class Side(models.TextChoices):
        SOURCE = "source"
        DESTINATION = "destination"

    seq = models.BigIntegerField(db_index=True)
    side = models.CharField(max_length=12, choices=Side.choices)
    type = models.CharField(max_length=200)
    value = models.CharField(max_length=200)

    class Meta:
        indexes = [models.Index(fields=["value", "seq"], name="eventparty_value_seq")]


class EventAccess(models.Model):
    """Which organizations may read an event: every party to it, and every past custodian of its objects."""

    seq = models.BigIntegerField()
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "seq"], name="eventaccess_unique")]


class Transfer(models.Model):
    """A ship → receive of a lot quantity between two parties, derived from the ledger."""

    class Status(models.TextChoices):
        IN_TRANSIT = "in_transit"
        RECEIVED = "received"
        RECEIVED_ONLY = "received_only"

    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, null=True, blank=True, related_name="transfers")
    gtin = models.CharField(max_length=14, db_index=True)
    lot_number = models.CharField(max_length=20, blank=True)
    quantity = models.FloatField()
    received_quantity = models.FloatField(null=True, blank=True)
    from_organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="transfers_out", null=True, blank=True
    )
    to_organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="transfers_in", null=True, blank=True
    )
    from_party = models.CharField(max_length=200, blank=True)
    to_party = models.CharField(max_length=200, blank=True)
    from_location = models.CharField(max_length=200, blank=True)
    to_location = models.CharField(max_length=200, blank=True)
    ship_seq = models.BigIntegerField(null=True, blank=True, db_index=True)
    receive_seq = models.BigIntegerField(null=True, blank=True, db_index=True)
    ship_time = models.DateTimeField(null=True, blank=True)
    receive_time = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_TRANSIT)
    despatch_advice = models.CharField(
        max_length=200,
        blank=True,
        db_index=True,
        help_text="The shipment's despatch-advice bizTransaction (desadv), which pairs a receipt with its shipment.",
    )
    derived_at_seq = models.BigIntegerField(help_text="Ledger seq of the latest event that changed this row.")

    class Meta:
        indexes = [
            models.Index(fields=["gtin", "lot_number"], name="transfer_lot"),
            models.Index(fields=["derived_at_seq"], name="transfer_derived_at"),
        ]

    def __str__(self) -> str:
        return f"{self.gtin}/{self.lot_number} x{self.quantity} {self.from_party} -> {self.to_party}"


class Watermark(models.Model):
    """How far along the ledger a derived process has got: ``seq`` is the next entry to process
    (the number of entries done, since sequence numbers start at 0)."""

    name = models.CharField(max_length=64, primary_key=True)
    seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)


class MerkleNode(models.Model):
    """Hash of the perfect subtree of 2**level leaves starting at leaf index * 2**level (RFC 9162)."""

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["level", "index"], name="merklenode_level_index")]


class SigningKey(models.Model):
    """A ledger signing key's public half; the private key lives outside the database."""

    key_id = models.CharField(max_length=120, primary_key=True)
    name = models.CharField(max_length=200)
    algorithm = models.CharField(max_length=16, default="Ed25519")
    public_key = models.CharField(max_length=64, help_text="base64 of the 32 raw bytes")
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key_id


class Checkpoint(models.Model):
    """A signed statement of the tree size and root hash (C2SP tlog-checkpoint note, Ed25519)."""

    tree_size = models.BigIntegerField(db_index=True)
    root_hash = models.CharField(max_length=64)
    timestamp = models.DateTimeField()
    key_id = models.CharField(max_length=120)
    signature = models.CharField(max_length=200)
    note = models.TextField()

    class Meta:
        ordering = ["-tree_size", "-timestamp"]

    def __str__(self) -> str:
        return f"checkpoint {self.tree_size} {self.root_hash[:12]}"


# --------------------------------------------------------------------------------------------
# Audit trail of changes to master data, keys and accounts (21 CFR 11.10(e), EU GMP Annex 11 §9)
# --------------------------------------------------------------------------------------------
# django-pghistory installs PostgreSQL triggers that copy every inserted, updated or deleted row into
# an append-only event table, whatever made the change: the admin, QuerySet.update(), bulk_* or raw
# SQL (docs/audit.md). Tracking is applied here, after the models, so the models stay plain; Django's
# auth models are tracked through proxies so that their triggers' migrations belong to this app.
# Who and why ride along as context (provenance/audit.py); the database role is stamped by the
# database itself (pgh_db_user, a column default set in migration 0004).


import pghistory  # noqa: E402
import pghistory.models  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402


class AuditEvent(pghistory.models.Event):
    """Columns of every audit event table besides the tracked model's own fields (pgh_* from pghistory)."""

    pgh_db_user = models.TextField(  # noqa: DJ001 - NULL where no database stamped it (rows added by hand)
        null=True, blank=True, editable=False, help_text="Database role that made the change (set by the database)."
    )

    class Meta:
        abstract = True


class TrackedUser(User):
    class Meta:
        proxy = True


class TrackedGroup(Group):
    class Meta:
        proxy = True


class TrackedUserGroup(User.groups.through):  # type: ignore[name-defined,misc]
    class Meta:
        proxy = True


class TrackedUserPermission(User.user_permissions.through):  # type: ignore[name-defined,misc]
    class Meta:
        proxy = True


class TrackedGroupPermission(Group.permissions.through):  # type: ignore[name-defined,misc]
    class Meta:
        proxy = True


def audited(
    model: type[models.Model], name: str, *trackers: pghistory.Tracker, app_label: str = "provenance", **options: Any
) -> type:
    """Create the append-only audit event model of ``model`` (insert, update, delete unless told otherwise),
    in ``app_label`` (the app that declares it and owns its migration)."""
    options.setdefault("obj_field", pghistory.ObjForeignKey(related_name="audit_events", related_query_name="+"))
    return pghistory.create_event_model(
        model,
        *(trackers or (pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())),
        model_name=name,
        app_label=app_label,
        abstract=False,
        base_model=AuditEvent,
        context_field=pghistory.ContextJSONField(),  # who/why stored in each event: no shared mutable table
        **options,
    )


OrganizationAudit = audited(Organization, "OrganizationAudit")
CompanyPrefixAudit = audited(CompanyPrefix, "CompanyPrefixAudit")
LocationAudit = audited(Location, "LocationAudit")
ProductAudit = audited(Product, "ProductAudit")
LotAudit = audited(Lot, "LotAudit")
PartnerApiKeyAudit = audited(PartnerApiKey, "PartnerApiKeyAudit")
UserAudit = audited(
    TrackedUser,
    "UserAudit",
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),  # fires on changes of the stored fields only: not on a login's last_login
    pghistory.UpdateEvent("password_change", condition=pghistory.AnyChange("password")),
    pghistory.DeleteEvent(),
    exclude=["password", "last_login"],  # a password hash has no place in an audit export
)
GroupAudit = audited(TrackedGroup, "GroupAudit")
UserGroupAudit = audited(
    TrackedUserGroup, "UserGroupAudit", pghistory.InsertEvent("add"), pghistory.DeleteEvent("remove"), obj_field=None
)
UserPermissionAudit = audited(
    TrackedUserPermission,
    "UserPermissionAudit",
    pghistory.InsertEvent("add"),
    pghistory.DeleteEvent("remove"),
    obj_field=None,
)
GroupPermissionAudit = audited(
    TrackedGroupPermission,
    "GroupPermissionAudit",
    pghistory.InsertEvent("add"),
    pghistory.DeleteEvent("remove"),
    obj_field=None,
)
