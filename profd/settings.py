"""One Settings object.  Every backend is chosen by a URL, every value can come from the
environment (``PROFD_<NAME>``), and command-line flags override both."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

MIB = 1024 * 1024


class Settings(msgspec.Struct, kw_only=True):
    data_dir: Path = Path("profd-data")
    # Object storage for profile blobs; obstore URL (file://, s3://, gs://, az://).
    blob_url: str | None = None
    # Uploaded debug files, source bundles and their chunks, and the symcaches built from them
    # [default: <blob_url>/symbols, or <data_dir>/symbols without a blob_url].  Where it is not
    # a local directory, <data_dir>/symbols/cache holds copies of what this node has used.
    symbols_url: str | None = None
    # Both stores' credentials, endpoint and region come from the usual environment variables
    # (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT, AWS_REGION, AWS_ALLOW_HTTP;
    # GOOGLE_* and AZURE_* for gs:// and az://).  For an S3-compatible server (MinIO, SeaweedFS)
    # these settings say the same and take precedence; an http:// endpoint allows plain HTTP.
    blob_endpoint: str | None = None
    blob_region: str | None = None
    blob_access_key_id: str | None = None
    blob_secret_access_key: str | None = None
    # Where the other backends live ("" = under data_dir).  SQLite files are sqlite:///<path>:
    # a relative path after the third slash, an absolute one after a fourth.
    # Profiles, their rollups and outcomes [default: sqlite:///<data_dir>/index.sqlite3].
    index_url: str = ""
    # Organizations, projects, DSN keys and tokens [default: sqlite:///<data_dir>/index.sqlite3].
    directory_url: str = ""
    # The bus from ingest to the worker [default: sqlite:///<data_dir>/bus.sqlite3].
    bus_url: str = ""
    # A Kafka bus (bus_url kafka://host:port[,host:port]?topic=profiles): the partitions of
    # each topic profd creates when the broker lacks it, how long ingest waits for the
    # broker's acknowledgement before answering 503, and how old the consumer group's lag
    # (the 429 check, readiness) may be, in seconds: it is read at most that often.
    bus_partitions: int = 8
    bus_ack_timeout: float = 5.0
    bus_lag_cache_seconds: float = 2.0
    # With a Kafka bus, workers also write what vroom wrote, to these topics, for a Sentry or
    # Snuba storage layer to consume (profd.pipeline.sentry_topics).
    topic_processed_profiles: str = "processed-profiles"
    topic_call_trees: str = "profiles-call-tree"
    topic_profile_chunks: str = "snuba-profile-chunks"
    topic_outcomes: str = "outcomes"
    # Where `profd serve` listens.
    host: str = "127.0.0.1"
    port: int = 8000
    # How SDKs reach this server, for the DSNs profd prints [default: http://host:port].
    public_url: str | None = None
    # Sentry's option profiling.profile_metrics.unsampled_profiles.enabled.
    unsampled_profiles_enabled: bool = False
    # Retention for organizations without their own setting.
    default_retention_days: int = 90
    # Largest expanded profile accepted (Relay's limits.max_profile_size).
    max_profile_size: int = 50 * MIB
    # Largest envelope request body, as sent and once decompressed (Relay's
    # limits.max_envelope_size): refused with 413 while it streams in, before the rest is read.
    max_envelope_size: int = 100 * MIB
    # Items in one envelope beyond which it is refused with 413 (SDKs send a handful).
    max_envelope_items: int = 1000
    # Seconds between two retention runs in `profd serve`.
    retention_interval: float = 3600.0
    # Messages waiting for the worker beyond which ingest answers 429.
    queue_max_depth: int = 10_000
    # sentry-cli uploads: one chunk once inflated, the chunks of one request together, one
    # assembled debug file (advertised by GET .../chunk-upload/ and enforced).
    upload_chunk_size: int = 8 * MIB
    upload_max_request_size: int = 32 * MIB
    upload_max_file_size: int = 2048 * MIB
    # Profile items one DSN key may send, in the `limits` library's notation ("100/second",
    # "5000/hour"); beyond it ingest answers 429.  Unset: no per-key limit.
    key_rate_limit: str | None = None
    # A message whose backend is down is tried this often, the waits doubling from
    # `worker_retry_backoff` seconds (at most 30 s), before it goes to the dead-letter topic.
    worker_max_attempts: int = 8
    worker_retry_backoff: float = 0.5
    # Workers commit offsets after this many handled messages or this many seconds, whichever
    # comes first: one commit per batch, and at most a batch handled again after a crash.
    worker_commit_messages: int = 100
    worker_commit_seconds: float = 1.0
    # /health/ready turns red when more messages than this wait for the workers.
    ready_max_lag: int = 5_000
    # ... and when the data directory's disk has less free space than this (bytes): the
    # queue and index could not take what comes next.
    min_free_disk: int = 64 * MIB
    # Log lines as "text" or "json" (one object per line, with the request id), at this level.
    log_format: str = "text"
    log_level: str = "warning"

    def __post_init__(self) -> None:
        data_dir = Path(self.data_dir)
        self.index_url = self.index_url or sqlite_url(data_dir / "index.sqlite3")
        self.directory_url = self.directory_url or sqlite_url(data_dir / "index.sqlite3")
        self.bus_url = self.bus_url or sqlite_url(data_dir / "bus.sqlite3")

    @property
    def dsn_base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def blob_store_url(self) -> str:
        return self.blob_url or (self.data_dir / "blobs").resolve().as_uri()

    @property
    def symbols_store_url(self) -> str:
        if self.symbols_url:
            return self.symbols_url
        if self.blob_url:
            return self.blob_url.rstrip("/") + "/symbols"
        return (self.data_dir / "symbols").resolve().as_uri()

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Defaults, then ``PROFD_*`` environment variables, then `overrides` (None = unset)."""
        values: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            env = os.environ.get(f"PROFD_{name.upper()}")
            if env is not None:
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return msgspec.convert(values, cls, strict=False, from_attributes=True)


def sqlite_url(path: Path | str) -> str:
    """The URL of an SQLite file: sqlite:///relative/path or sqlite:////absolute/path."""
    return f"sqlite:///{path}"


def sqlite_path(url: str) -> Path:
    """The file an sqlite:/// URL names (ValueError for any other URL)."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"{url!r} is not an SQLite URL: sqlite:///relative/path or sqlite:////absolute/path")
    return Path(url[len(prefix) :])
