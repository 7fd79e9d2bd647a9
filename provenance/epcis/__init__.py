"""GS1 EPCIS 2.0 / CBV 2.0 for the custody ledger, in pure Python (no Django below this package).

identifiers  EPC URN and GS1 Digital Link parsing, check digits, canonical form, URN rendering, NDC
cbv          CBV 2.0 vocabularies, bare-word normalisation and the strict check used at capture
namespaces   @context prefixes and CURIE expansion
eventhash    CBV 2.0 Event Hash ID (ni:///sha-256;...?ver=CBV2.0)
validation   GS1 JSON schema (package data in schema/) plus identifier, vocabulary, time and ILMD checks
privacy      refusal of patient data
normalize    the indexed view of an event, and rendering of stored events for queries
problem      the Problem shape shared by validation and privacy
"""
