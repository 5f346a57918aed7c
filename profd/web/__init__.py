"""The only place that knows HTTP: the ASGI app serving ingest (and later the API and UI)."""
