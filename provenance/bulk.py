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
    # elsewhere (SQLite): one prepared INSERT run per row, values adapted as the ORM would (JSON, dates)
    targets = [columns_of[name] for name in fields]
    table = connection.ops.quote_name(meta.db_table)
    names = ", ".join(connection.ops.quote_name(str(c.column)) for c in targets)
    marks = ", ".join(["%s"] * len(targets))
    prepared = [[c.get_db_prep_save(v, connection) for c, v in zip(targets, row, strict=True)] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", prepared)  # noqa: S608


def update_rows(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write ``fields`` of existing rows by primary key: COPY into a temporary table and one UPDATE ... FROM on
    PostgreSQL, one prepared UPDATE run per row (executemany) elsewhere.

    Django's bulk_update builds a CASE WHEN per field per row, whose compilation cost grows with the batch and
    dominated derivation (about half the time of a bulk load).
    """
    if not objs:
        return
    meta = model._meta
    pk = cast(models.Field, meta.pk)
    columns = [cast(models.Field, meta.get_field(name)) for name in fields]
    rows = [[*(c.get_db_prep_save(getattr(obj, c.attname), connection) for c in columns), obj.pk] for obj in objs]
    table = connection.ops.quote_name(meta.db_table)
    quoted = [connection.ops.quote_name(str(c.column)) for c in columns]
    key = connection.ops.quote_name(str(pk.column))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            temp = connection.ops.quote_name(f"_update_{meta.db_table}")
            # names come from model metadata, quoted; values go through COPY
            select = f"SELECT {', '.join(quoted)}, {key} FROM {table}"  # noqa: S608
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {temp} AS {select} WITH NO DATA")
            cursor.execute(f"TRUNCATE {temp}")
            with cursor.cursor.copy(f"COPY {temp} ({', '.join(quoted)}, {key}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            assignments = ", ".join(f"{q} = {temp}.{q}" for q in quoted)
            cursor.execute(f"UPDATE {table} SET {assignments} FROM {temp} WHERE {table}.{key} = {temp}.{key}")  # noqa: S608
            cursor.execute(f"TRUNCATE {temp}")
        else:
            assignments = ", ".join(f"{q} = %s" for q in quoted)
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {key} = %s", rows)  # noqa: S608
