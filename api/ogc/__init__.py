"""OGC API – Features and vector tiles as plain functions, free of Flask (pygeoapi's
``api/`` core is the model): each takes an :class:`~api.ogc.request.OgcRequest` and returns
an :class:`~api.ogc.request.OgcResponse` (status, headers, body). `api/features.py` and
`api/tiles.py` are the thin Flask adapters; tests and other doors call the same core.

May import: ``geo``, ``api.endpoints`` (parameter types), ``api.ogc``. Never Flask or
Werkzeug (`tests/test_architecture.py`).
"""
