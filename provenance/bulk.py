"""Fast appends: COPY on PostgreSQL (no ORM objects, no SQL compilation), bulk_create elsewhere.

The ledger's write path inserts thousands of rows per document into several tables under the
sequencer lock; COPY keeps that lock short. Rows are plain tuples in the order of ``fields``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from django.db import connection, models


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    meta = model._meta
    columns_of = {name: cast(models.Field, meta.get_field(name)) for name in fields}
    if connection.vendor == "postgresql":
        json_positions = [i for i, name in enumerate(fields) if isinstance(meta.get_field(name), models.JSONField)]
        columns = ", ".join(f'"{columns_of[name].column}"' for name in fields)
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            with raw.copy(f'COPY "{meta.db_table}" ({columns}) FROM STDIN') as copy:
                for row in rows:
                    if json_positions:
                        row = list(row)
                        for i in json_positions:
                            row[i] = json.dumps(row[i], ensure_ascii=False, separators=(",", ":"))
                    copy.write_row(row)
        return
    attnames = [columns_of[name].attname for name in fields]
    model._default_manager.bulk_create(  # type: ignore[attr-defined]
        [model(**dict(zip(attnames, row, strict=True))) for row in rows], batch_size=2000
    )
