"""Namespace prefixes of an EPCIS JSON-LD document, and CURIE expansion without a JSON-LD processor.

EPCIS 2.0 JSON keeps extension fields as CURIEs (``example:myField``) whose prefixes are declared in
``@context``. Expanding them needs only the prefix map, not a full JSON-LD expansion (which would
fetch remote contexts): the standard context's prefixes are built in, the document's own are added.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# The prefixes the GS1 EPCIS 2.0 context (epcis-context.jsonld) declares; a document may add or override.
STANDARD_PREFIXES: Mapping[str, str] = MappingProxyType({
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": "https://ref.gs1.org/cbv/",
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": "https://gs1.org/voc/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
})  # fmt: skip

RDFS_COMMENT = "http://www.w3.org/2000/01/rdf-schema#comment"


def prefixes(context: object = None) -> dict[str, str]:
    """Prefix -> namespace IRI from an ``@context`` (string, object or list of them), standard ones first.

    Also accepts a plain prefix mapping. Remote context URLs add nothing here: the standard one's
    prefixes are built in, and custom remote contexts cannot be fetched (no network at capture).
    """
    found = dict(STANDARD_PREFIXES)
    _collect(context, found)
    return found


def _collect(context: object, found: dict[str, str]) -> None:
    if isinstance(context, list):
        for item in context:
            _collect(item, found)
    elif isinstance(context, Mapping):
        for key, value in context.items():
            if key.startswith("@"):
                continue
            if isinstance(value, str) and not value.startswith("@"):
                found[key] = value
            elif isinstance(value, Mapping) and isinstance(value.get("@id"), str) and value.get("@prefix") is True:
                found[key] = value["@id"]


def split_curie(name: str) -> tuple[str, str] | None:
    """(prefix, local name) of a CURIE-looking string, or None (no colon, or an absolute IRI like http://)."""
    prefix, sep, local = name.partition(":")
    if not sep or not prefix or local.startswith("//"):
        return None
    return prefix, local


def expand(name: str, namespaces: Mapping[str, str]) -> str:
    """The full IRI of a CURIE whose prefix is known; anything else unchanged."""
    parts = split_curie(name)
    if parts is None or parts[0] not in namespaces:
        return name
    return namespaces[parts[0]] + parts[1]


def local_name(name: str) -> str:
    """The part after the namespace: ``example:patientName`` and ``https://x.org/ns#patientName`` both give
    ``patientName``."""
    for separator in ("#", "/"):
        if "//" in name and separator in name.split("//", 1)[1]:
            return name.rsplit(separator, 1)[1]
    parts = split_curie(name)
    if parts is not None:
        return parts[1].rsplit(":", 1)[-1]
    return name
