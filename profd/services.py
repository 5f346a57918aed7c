"""Builds the backends the settings choose, in one place, and hands them out together.

Every backend is named by a URL (profd.settings), one function per protocol builds it, and
a scheme no function knows is refused with its name:

- `directory_url`, `index_url`: ``sqlite:///<path>`` (profd.store.sqlite).  Both name the
  same file by default, which then holds both (one connection).
- `blob_url`: obstore's URLs: ``file://``, ``memory://``, ``s3://``, ``gs://``, ``az://`` ...
  `symbols_url` too (profd.symbols.objects), beside the blobs unless set.
- `bus_url`: ``sqlite:///<path>`` (profd.bus.sqlite_queue), or
  ``kafka://host:port[,host:port]?topic=profiles`` (profd.bus.kafka).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from profd.bus.kafka import KafkaBus
from profd.bus.protocol import Bus
from profd.bus.sqlite_queue import SqliteQueue
from profd.bus.worker import CONSUMER_GROUP
from profd.ingest.endpoint import EnvelopeEndpoint
from profd.ingest.rate_limit import KeyRateLimit
from profd.pipeline.context import TaskContext
from profd.pipeline.outcomes import OutcomeTracker
from profd.settings import Settings, sqlite_path
from profd.store import ProfileStore
from profd.store.blobs import BlobStore as ObjectStore
from profd.store.protocols import BlobStore, Directory, ProfileIndex, ProfileReads
from profd.store.records import Organization, Project, ProjectKey
from profd.store.sqlite import SqliteBackend
from profd.symbols.contract import Symbolicator
from profd.symbols.objects import SymbolObjects
from profd.symbols.store import SymbolStore, UploadLimits
from profd.symbols.symbolicator import LocalSymbolicator

DEFAULT_SLUG = "default"

# obstore's schemes (obstore.store.from_url); http(s) URLs name S3, Azure or GCS buckets.
BLOB_SCHEMES = ("file", "memory", "s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https")


class UnknownBackend(ValueError):
    """A backend URL whose scheme profd has no implementation for."""

    def __init__(self, setting: str, url: str, known: tuple[str, ...]) -> None:
        scheme = urlsplit(url).scheme or "(none)"
        super().__init__(
            f"{setting}: no backend for the scheme {scheme!r} in {url!r} (profd knows {', '.join(known)})"
        )
        self.scheme = scheme


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


class Opened:
    """The backends built so far, so that URLs naming one SQLite file share one connection."""

    def __init__(self) -> None:
        self.sqlite: dict[Path, SqliteBackend] = {}

    def sqlite_backend(self, url: str) -> SqliteBackend:
        path = sqlite_path(url)
        key = path if str(path) == ":memory:" else path.resolve()
        found = self.sqlite.get(key)
        if found is None:
            found = self.sqlite[key] = SqliteBackend(path)
        return found


def open_directory(url: str, opened: Opened | None = None) -> Directory:
    if _scheme(url) == "sqlite":
        return (opened or Opened()).sqlite_backend(url)
    raise UnknownBackend("directory_url", url, ("sqlite",))


def open_index(url: str, opened: Opened | None = None) -> ProfileIndex:
    if _scheme(url) == "sqlite":
        return (opened or Opened()).sqlite_backend(url)
    raise UnknownBackend("index_url", url, ("sqlite",))


def open_reads(url: str, opened: Opened | None = None) -> ProfileReads:
    """The read side of the index at `url` (the same URL as `index_url`)."""
    if _scheme(url) == "sqlite":
        return (opened or Opened()).sqlite_backend(url)
    raise UnknownBackend("index_url", url, ("sqlite",))


def open_blobs(url: str, settings: Settings | None = None, setting: str = "blob_url") -> ObjectStore:
    if _scheme(url) in BLOB_SCHEMES:
        return ObjectStore(url, **object_store_options(url, settings or Settings()))
    raise UnknownBackend(setting, url, BLOB_SCHEMES)


def object_store_options(url: str, settings: Settings) -> dict[str, Any]:
    """obstore's options for an S3 URL from the blob_* settings; obstore itself reads the
    AWS_* environment variables (and GOOGLE_*, AZURE_* for the other stores)."""
    if _scheme(url) not in ("s3", "s3a"):
        return {}
    config = {
        "endpoint": settings.blob_endpoint,
        "region": settings.blob_region,
        "access_key_id": settings.blob_access_key_id,
        "secret_access_key": settings.blob_secret_access_key,
    }
    options: dict[str, Any] = {name: value for name, value in config.items() if value}
    if (settings.blob_endpoint or "").startswith("http://"):
        options["client_options"] = {"allow_http": True}
    return options


def open_bus(url: str, settings: Settings | None = None) -> Bus:
    if _scheme(url) == "sqlite":
        return SqliteQueue(sqlite_path(url))
    if _scheme(url) == "kafka":
        settings = settings or Settings()
        # The topics workers write for Sentry's storage are created with the bus's own.
        output = (
            settings.topic_processed_profiles,
            settings.topic_call_trees,
            settings.topic_profile_chunks,
            settings.topic_outcomes,
        )
        return KafkaBus(
            url,
            partitions=settings.bus_partitions,
            ack_timeout=settings.bus_ack_timeout,
            lag_cache_seconds=settings.bus_lag_cache_seconds,
            other_topics=output,
        )
    raise UnknownBackend("bus_url", url, ("sqlite", "kafka"))


@dataclass
class Services:
    settings: Settings
    directory: Directory
    index: ProfileIndex
    reads: ProfileReads
    blobs: BlobStore
    profiles: ProfileStore
    symbolicator: Symbolicator
    outcomes: OutcomeTracker
    queue: Bus
    symbols: SymbolStore

    def task_context(self) -> TaskContext:
        return TaskContext(
            directory=self.directory,
            store=self.profiles,
            symbolicator=self.symbolicator,
            outcomes=self.outcomes,
            unsampled_profiles_enabled=self.settings.unsampled_profiles_enabled,
            default_retention_days=self.settings.default_retention_days,
            max_profile_size=self.settings.max_profile_size,
        )

    def default_project(self) -> tuple[Organization, Project]:
        """Organization and project ``default``, created on first use (first start)."""
        directory = self.directory
        organization = directory.organization_by_slug(DEFAULT_SLUG) or directory.create_organization(
            DEFAULT_SLUG, "Default"
        )
        for project in directory.projects(organization.id):
            if project.slug == DEFAULT_SLUG:
                return organization, project
        return organization, directory.create_project(organization.id, DEFAULT_SLUG, "Default")

    def dsn(self, project: Project) -> str:
        """The project's DSN: its first key, an active one while there is one."""
        return self.key_dsn(self.directory.keys(project.id)[0])

    def key_dsn(self, key: ProjectKey) -> str:
        scheme, _, host = self.settings.dsn_base_url.partition("://")
        return f"{scheme}://{key.public_key}@{host.rstrip('/')}/{key.project_id}"

    def envelope_endpoint(self) -> EnvelopeEndpoint:
        return EnvelopeEndpoint(
            directory=self.directory,
            queue=self.queue,
            outcomes=self.outcomes,
            consumer_group=CONSUMER_GROUP,
            max_size=self.settings.max_profile_size,
            max_queue_depth=self.settings.queue_max_depth,
            max_envelope_size=self.settings.max_envelope_size,
            max_envelope_items=self.settings.max_envelope_items,
            rate_limit=KeyRateLimit(self.settings.key_rate_limit) if self.settings.key_rate_limit else None,
        )

    def close(self) -> None:
        self.queue.close()
        self.symbols.close()
        closed: list[object] = []  # one SQLite file may be all three: closed once
        for backend in (self.directory, self.index, self.reads):
            if not any(backend is seen for seen in closed):
                backend.close()
                closed.append(backend)


def open_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    opened = Opened()
    directory = open_directory(settings.directory_url, opened)
    index = open_index(settings.index_url, opened)
    reads = open_reads(settings.index_url, opened)
    if len(opened.sqlite) > 1:
        # Outcomes set their projects' has_profiles in the same transaction.
        for backend in opened.sqlite.values():
            backend.close()
        raise ValueError(
            f"directory_url {settings.directory_url!r} and index_url {settings.index_url!r} must name"
            " the same SQLite file"
        )
    blobs = open_blobs(settings.blob_store_url, settings)
    symbols = SymbolStore(
        SymbolObjects(
            open_blobs(settings.symbols_store_url, settings, "symbols_url"),
            settings.data_dir / "symbols" / "cache",
        ),
        sqlite_path(settings.directory_url),
        UploadLimits(
            chunk_size=settings.upload_chunk_size,
            max_request_size=settings.upload_max_request_size,
            max_file_size=settings.upload_max_file_size,
        ),
    )
    legacy_index = settings.data_dir / "symbols" / "symbols.sqlite3"
    if legacy_index.exists():
        symbols.adopt_index(legacy_index)
    return Services(
        settings=settings,
        directory=directory,
        index=index,
        reads=reads,
        blobs=blobs,
        profiles=ProfileStore(blobs, index, settings.default_retention_days),
        symbolicator=LocalSymbolicator(symbols),
        symbols=symbols,
        outcomes=OutcomeTracker(index),
        queue=open_bus(settings.bus_url, settings),
    )
