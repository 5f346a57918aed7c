"""The process's Prometheus metrics, defined in one place and served at ``/metrics``.

A leaf module: every part of the flow may count here without importing the others.  Only
ingest counts here so far: `profd serve` runs the worker in a child process, whose counters
need Prometheus's multiprocess mode before they can be served from here.
"""

from __future__ import annotations

from prometheus_client import Counter

# Profile items of envelopes that ingest answered 200 or 429: ingest has taken
# responsibility for each, so each ends as exactly one outcome in its primary category
# (profile, or profile_chunk / profile_chunk_ui).  Received = accepted + invalid + filtered
# + rate limited is checked against this.
PROFILE_ITEMS_RECEIVED = Counter(
    "profd_ingest_profile_items",
    "Profile items in envelopes ingest answered with 200 or 429",
    ["item_type"],
)
