"""Ingestion: how an event gets from a request (or a file) into ``ops_events``.

- ``gate.py``: the one gate every ingest endpoint passes (body, encoding, JSON, key, rate limit);
- ``formats/``: the native, PostHog and Segment adapters behind it;
- ``validation.py``: one item checked into an ``EventRow`` (``event_row.py``) against the registry;
- ``services.py``: the batch's write path, ``events_ingest`` (validate, identities, classify, store);
- ``classify.py``: real or not at ingestion (the SQL twin for history is events/classification.py);
- ``identities.py``: profiles, memberships, account traits and aliases from the SDKs' calls;
- ``store.py``: the COPY (or the staged insert) and the per-batch upserts;
- ``ratelimit.py``: the per-key count (Redis, or PostgreSQL);
- ``parking.py``: the names the product sends that the registry does not know yet;
- ``importer.py``: ``import_events``, history through the same adapters and write path.

The HTTP views are the app's (events/apis.py, events/sdk_apis.py, events/cors.py).
"""
