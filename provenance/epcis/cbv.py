"""CBV 2.0 standard vocabularies, and the one rule for writing them: bare words in EPCIS 2.0 JSON.

The word lists are the terms of GS1's JSON-LD contexts (``cbv-context-*.jsonld``,
``gs1-context-*.jsonld``), which are the same as the enums of the EPCIS 2.0 JSON schema and the
terms of ``CBV.ttl``. A standard value is stored as its bare word (``shipping``); a custom value is
a URI of the partner's own namespace and is stored as it is.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

CBV_NAMESPACE = "https://ref.gs1.org/cbv/"
GS1_VOC_NAMESPACE = "https://gs1.org/voc/"

BIZ_STEPS = frozenset({
    "accepting", "arriving", "assembling", "collecting", "commissioning", "consigning", "creating_class_instance",
    "cycle_counting", "decommissioning", "departing", "destroying", "disassembling", "dispensing", "encoding",
    "entering_exiting", "holding", "inspecting", "installing", "killing", "loading", "other", "packing", "picking",
    "receiving", "removing", "repackaging", "repairing", "replacing", "reserving", "retail_selling", "sampling",
    "sensor_reporting", "shipping", "staging_outbound", "stock_taking", "stocking", "storing", "transporting",
    "unloading", "unpacking", "void_shipping",
})  # fmt: skip
DISPOSITIONS = frozenset({
    "active", "available", "completeness_inferred", "completeness_verified", "conformant", "container_closed",
    "container_open", "damaged", "destroyed", "dispensed", "disposed", "encoded", "expired", "in_progress",
    "in_transit", "inactive", "mismatch_class", "mismatch_instance", "mismatch_quantity", "needs_replacement",
    "no_pedigree_match", "non_conformant", "non_sellable_other", "partially_dispensed", "recalled", "reserved",
    "retail_sold", "returned", "sellable_accessible", "sellable_not_accessible", "stolen", "unavailable", "unknown",
})  # fmt: skip
SOURCE_DEST_TYPES = frozenset({"location", "owning_party", "possessing_party"})
BIZ_TRANSACTION_TYPES = frozenset({
    "bol", "cert", "desadv", "inv", "pedigree", "po", "poc", "prodorder", "recadv", "rma", "testprd", "testres",
    "upevt",
})  # fmt: skip
ERROR_REASONS = frozenset({"did_not_occur", "incorrect_data"})
COMPONENTS = frozenset({
    "altitude", "axial_distance", "azimuth", "easting", "elevation_angle", "height", "latitude", "longitude",
    "northing", "polar_angle", "spherical_radius", "x", "y", "z",
})  # fmt: skip
# GS1 Web Vocabulary terms used by sensor reports (gs1-context-measurement-type / sensor-alert-type).
MEASUREMENT_TYPES = frozenset({
    "AbsoluteHumidity", "AbsorbedDose", "AbsorbedDoseRate", "Acceleration", "Altitude", "AmountOfSubstance",
    "AmountOfSubstancePerUnitVolume", "Angle", "AngularAcceleration", "AngularMomentum", "AngularVelocity", "Area",
    "Capacitance", "Conductance", "Conductivity", "Count", "Density", "Dimensionless", "DoseEquivalent",
    "DoseEquivalentRate", "DynamicViscosity", "ElectricCharge", "ElectricCurrent", "ElectricCurrentDensity",
    "ElectricFieldStrength", "Energy", "Exposure", "Force", "Frequency", "Illuminance", "Inductance", "Irradiance",
    "KinematicViscosity", "Length", "LinearMomentum", "Luminance", "LuminousFlux", "LuminousIntensity",
    "MagneticFlux", "MagneticFluxDensity", "MagneticVectorPotential", "Mass", "MassConcentration", "MassFlowRate",
    "MassPerAreaTime", "MemoryCapacity", "MolalityOfSolute", "MolarEnergy", "MolarMass", "MolarVolume", "Power",
    "Pressure", "RadiantFlux", "RadiantIntensity", "Radioactivity", "RelativeHumidity", "Resistance", "Resistivity",
    "SolidAngle", "SpecificVolume", "Speed", "SurfaceDensity", "SurfaceTension", "Temperature", "Time", "Torque",
    "Voltage", "Volume", "VolumeFlowRate", "VolumeFraction", "VolumetricFlux", "Wavenumber",
})  # fmt: skip
SENSOR_ALERT_TYPES = frozenset({"ALARM_CONDITION", "ERROR_CONDITION"})


class VocabularyError(ValueError):
    """A vocabulary value this service will not accept; the message says what to send instead."""


@dataclass(frozen=True)
class Vocabulary:
    """One vocabulary: its bare words, the IRI prefix they expand to, and its EPCIS 1.x URN prefix."""

    name: str
    words: frozenset[str]
    iri_prefix: str
    urn_prefix: str | None


VOCABULARIES: dict[str, Vocabulary] = {
    "bizStep": Vocabulary("business step", BIZ_STEPS, CBV_NAMESPACE + "BizStep-", "urn:epcglobal:cbv:bizstep:"),
    "disposition": Vocabulary("disposition", DISPOSITIONS, CBV_NAMESPACE + "Disp-", "urn:epcglobal:cbv:disp:"),
    "sourceDestType": Vocabulary(
        "source/destination type", SOURCE_DEST_TYPES, CBV_NAMESPACE + "SDT-", "urn:epcglobal:cbv:sdt:"
    ),
    "bizTransactionType": Vocabulary(
        "business transaction type", BIZ_TRANSACTION_TYPES, CBV_NAMESPACE + "BTT-", "urn:epcglobal:cbv:btt:"
    ),
    "errorReason": Vocabulary("error reason", ERROR_REASONS, CBV_NAMESPACE + "ER-", "urn:epcglobal:cbv:er:"),
    "component": Vocabulary("sensor component", COMPONENTS, CBV_NAMESPACE + "Comp-", None),
    "measurementType": Vocabulary("measurement type", MEASUREMENT_TYPES, GS1_VOC_NAMESPACE, None),
    "sensorAlertType": Vocabulary("sensor alert type", SENSOR_ALERT_TYPES, GS1_VOC_NAMESPACE, None),
}
# Names other code may use for the same vocabularies.
_ALIASES = {
    "bizstep": "bizStep", "biz_step": "bizStep", "disp": "disposition", "persistentDisposition": "disposition",
    "source": "sourceDestType", "destination": "sourceDestType", "sourceDestinationType": "sourceDestType",
    "sdt": "sourceDestType", "bizTransaction": "bizTransactionType", "btt": "bizTransactionType",
    "reason": "errorReason", "er": "errorReason",
}  # fmt: skip

# The schema refuses these namespaces for custom values: they are GS1's own (EPCIS 1.x) spellings.
_GS1_LEGACY = re.compile(r"(urn:epcglobal:cbv|https?://ns\.gs1\.org/cbv/)", re.IGNORECASE)
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def vocabulary(kind: str) -> Vocabulary:
    try:
        return VOCABULARIES[_ALIASES.get(kind, kind)]
    except KeyError:
        raise ValueError(f"Unknown vocabulary kind {kind!r}; use one of {', '.join(VOCABULARIES)}.") from None


def normalize_vocab(value: str, kind: str) -> str:
    """The stored form: the bare word for a standard term (however it was written), else the URI unchanged.

    Lenient on purpose (used for query parameters too): the EPCIS 1.x URN and the full CBV IRI of a
    standard term both give the bare word. ``vocab_error`` is the strict check for capture.
    """
    vocab = vocabulary(kind)
    if value in vocab.words:
        return value
    if value.startswith(vocab.iri_prefix) and value[len(vocab.iri_prefix) :] in vocab.words:
        return value[len(vocab.iri_prefix) :]
    if (
        vocab.urn_prefix
        and value.lower().startswith(vocab.urn_prefix)
        and value[len(vocab.urn_prefix) :] in vocab.words
    ):
        return value[len(vocab.urn_prefix) :]
    return value


def expand_vocab(value: str, kind: str) -> str:
    """The full IRI of a standard bare word (as JSON-LD expansion gives it); other values unchanged."""
    vocab = vocabulary(kind)
    return vocab.iri_prefix + value if value in vocab.words else value


def is_standard(value: str, kind: str) -> bool:
    """True when the value is a standard term of the vocabulary, in any accepted spelling."""
    return normalize_vocab(value, kind) in vocabulary(kind).words


def vocab_error(value: object, kind: str) -> str | None:
    """Why the value is not acceptable for capture (what is wrong and what to send), or None when it is."""
    vocab = vocabulary(kind)
    if not isinstance(value, str) or not value:
        return f"A {vocab.name} must be a non-empty string: a CBV bare word such as {_example(vocab)} or a URI."
    if value in vocab.words:
        return None
    word = normalize_vocab(value, kind)
    if _GS1_LEGACY.match(value):
        if word in vocab.words:
            return (
                f"{value!r} is the EPCIS 1.x form of a CBV {vocab.name}. EPCIS 2.0 JSON uses the bare word: "
                f"send {word!r}."
            )
        return f"{value!r} uses GS1's reserved CBV namespace but is not a CBV 2.0 {vocab.name}. {_choices(vocab)}"
    if value.startswith(vocab.iri_prefix):
        if word in vocab.words:
            return None  # the full CBV IRI of a standard term is valid JSON-LD; it is stored as the bare word
        return f"{value!r} is not a CBV 2.0 {vocab.name}. {_choices(vocab)}"
    if _URI_SCHEME.match(value):
        return None  # a custom term in the partner's own namespace
    close = difflib.get_close_matches(value.lower(), sorted(vocab.words), n=1)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    return (
        f"{value!r} is not a CBV 2.0 {vocab.name}. {hint}{_choices(vocab)} A value of your own must be a URI in "
        "your namespace (e.g. https://example.com/vocab/my-step)."
    )


def validate_vocab(value: object, kind: str) -> str:
    """The stored form of a value acceptable for capture; VocabularyError with the reason otherwise."""
    problem = vocab_error(value, kind)
    if problem is not None:
        raise VocabularyError(problem)
    assert isinstance(value, str)
    return normalize_vocab(value, kind)


def _example(vocab: Vocabulary) -> str:
    return repr(sorted(vocab.words)[0])


def _choices(vocab: Vocabulary) -> str:
    words = sorted(vocab.words)
    listed = ", ".join(words) if len(words) <= 45 else ", ".join(words[:20]) + ", ..."
    return f"Standard values: {listed}."
