"""Carrying messages from ingest to the pipeline: at least once, committed after processing."""
