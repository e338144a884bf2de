"""Ingest format adapters behind the one gate (events/ingestion/gate.py): one file per format.

A new format is one file here with an object that satisfies ``events.ingestion.gate.IngestFormat``,
plus its URL in events/urls.py.
"""
