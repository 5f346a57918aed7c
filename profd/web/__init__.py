"""The only place that knows HTTP: the ASGI app (app.py) and everything it serves.

Sentry's envelope endpoint for SDKs (ingest.py, with Relay's CORS: cors.py), the query
API ``/api/v1/`` for the UI and scripts (api.py, bearer tokens and scopes: auth.py),
sentry-cli's upload routes (uploads.py), and the web UI's static files (static/).
protocol.py closes connections the way nginx does.  The logic behind the routes lives in
`profd.ingest`, `profd.query` and `profd.symbols`; refusals reach here as
`profd.errors.Refused` and leave as HTTP answers.
"""
