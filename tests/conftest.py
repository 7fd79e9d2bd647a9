"""Shared test cast: an operator, two trading partners with locations, and API clients for each.

Runs on PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, otherwise on SQLite in-process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from config.celery import app as celery_app


def _flush_with_teardown_permission() -> None:
    """pytest-django empties the database after transactional tests; the append-only triggers refuse
    that to everyone but a table owner who says so (provenance/appendonly.py). Only the harness says so."""
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush
    if getattr(original, "_provenance_patched", False):
        return

    def execute_sql_flush(self, sql_list):  # type: ignore[no-untyped-def]
        vendor = self.connection.vendor
        with self.connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute("SET provenance.test_teardown = 'on'")
            elif vendor == "sqlite":
                cursor.execute("CREATE TABLE IF NOT EXISTS provenance_maintenance (allow_delete INTEGER NOT NULL)")
                cursor.execute("INSERT INTO provenance_maintenance VALUES (1)")
        try:
            return original(self, sql_list)
        finally:
            with self.connection.cursor() as cursor:
                if vendor == "postgresql":
                    cursor.execute("RESET provenance.test_teardown")
                elif vendor == "sqlite":
                    cursor.execute("DELETE FROM provenance_maintenance")

    execute_sql_flush._provenance_patched = True  # type: ignore[attr-defined]
    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush


_flush_with_teardown_permission()


@pytest.fixture(autouse=True)
def _tasks_in_process(settings) -> Iterator[None]:
    # Tests call tasks in-process unless they start a real worker themselves (tests marked "worker").
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER


@pytest.fixture(scope="session", autouse=True)
def _cache_of_this_worker() -> Iterator[None]:
    """Parallel test processes share one Redis: each keeps its keys under its own prefix."""
    import os

    from django.conf import settings
    from django.test import override_settings

    worker = os.getenv("PYTEST_XDIST_WORKER", "main")
    caches = {name: {**conf, "KEY_PREFIX": f"test-{worker}"} for name, conf in settings.CACHES.items()}
    with override_settings(CACHES=caches):
        yield


@pytest.fixture(autouse=True)
def _no_throttle_state() -> None:
    """Each test starts with an empty cache (throttle counters, coalesced kicks): this process's keys only."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches["default"]  # the backend itself (django.core.cache.cache is a proxy)
    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(None, write=True)
        keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@dataclass
class Party:
    organization: object
    key: str
    client: APIClient
    sgln: str
    pgln: str


def _party(
    *, name: str, gln: str, prefix: str, operator: bool = False, can_capture: bool = True, can_query: bool = True
) -> Party:
    from provenance import services

    organization = services.organization_create(
        name=name,
        gln=gln,
        company_prefixes=[prefix],
        is_operator=operator,
        kind="operator" if operator else "wholesaler",
    )
    _, key = services.api_key_issue(
        organization=organization, name=f"{name} key", can_capture=can_capture, can_query=can_query
    )
    sgln = f"https://id.gs1.org/414/{gln}"
    services.location_create(sgln=sgln, organization=organization, name=f"{name} DC")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return Party(organization=organization, key=key, client=client, sgln=sgln, pgln=f"https://id.gs1.org/417/{gln}")


@pytest.fixture
def operator(db) -> Party:
    return _party(name="Ledger Operator", gln="0614141000005", prefix="0614141", operator=True)


@pytest.fixture
def alice(db) -> Party:
    """A wholesale distributor (company prefix 0700001)."""
    return _party(name="Alice Wholesale", gln="0700001000008", prefix="0700001")


@pytest.fixture
def bob(db) -> Party:
    """A pharmacy (company prefix 0700002)."""
    return _party(name="Bob Pharmacy", gln="0700002000007", prefix="0700002")


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_client(db) -> APIClient:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("compliance", "c@example.com", "a-long-test-password", is_staff=True)
    client = APIClient()
    client.force_login(user)
    return client
