"""The one shape of a capture problem: RFC 7807 fields plus where in the document it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VALIDATION = "epcisException:ValidationException"
CAPTURE_LIMIT = "epcisException:CaptureLimitExceededException"


@dataclass(frozen=True)
class Problem:
    """What is wrong with a captured document or event, and what to do about it.

    ``status`` is 400 for schema and syntax errors, 422 for well-formed but unacceptable content
    (patient data, events in the future), 413 for too many events. ``field`` is a JSON-pointer-like
    path inside the event (``/epcList/2``), or inside the document when ``event_index`` is None.
    """

    status: int
    type: str
    title: str
    detail: str
    event_index: int | None = None
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "eventIndex": self.event_index,
            "field": self.field,
        }


def pointer(*parts: object) -> str:
    """A JSON pointer (RFC 6901) from path parts: ``pointer("ilmd", "a/b")`` -> ``/ilmd/a~1b``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
