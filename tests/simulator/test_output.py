"""The document writer and the eventIDs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from simulator.events import EventIds
from simulator.output import FileWriter


def test_the_file_writer_writes_every_file_it_is_handed(tmp_path: Path) -> None:
    writer = FileWriter(tmp_path)
    for i in range(50):
        writer.write(f"documents/2025-0{1 + i % 3}/{i:07d}_x.json", b"{}" * i)
    files = sorted(tmp_path.rglob("*.json"))
    assert len(files) == 50
    assert {f.read_bytes() for f in files} == {b"{}" * i for i in range(50)}


def test_the_file_writer_says_when_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "documents").write_text("a file where a folder should be")
    writer = FileWriter(tmp_path)
    with pytest.raises(OSError):
        writer.write("documents/2025-03/0000001_x.json", b"{}")


def test_event_ids_are_random_version_4_uuids_that_repeat_with_the_seed() -> None:
    a, b, c = EventIds(1), EventIds(1), EventIds(2)
    first = [a.next() for _ in range(EventIds.BATCH + 10)]  # crosses a batch boundary
    assert first == [b.next() for _ in range(EventIds.BATCH + 10)]
    assert first[:100] != [c.next() for _ in range(100)]
    assert len(set(first)) == len(first)
    for text in first:
        assert text.startswith("urn:uuid:")
        u = uuid.UUID(text[len("urn:uuid:") :])
        assert u.version == 4
        assert u.variant == uuid.RFC_4122
        assert str(u) == text[len("urn:uuid:") :]
