"""Builds the backends the settings choose, in one place, and hands them out together."""

from __future__ import annotations

from dataclasses import dataclass

from profd.bus.sqlite_queue import SqliteQueue
from profd.bus.worker import CONSUMER_GROUP
from profd.ingest.endpoint import EnvelopeEndpoint
from profd.ingest.rate_limit import KeyRateLimit
from profd.pipeline.context import TaskContext
from profd.pipeline.outcomes import OutcomeTracker
from profd.pipeline.symbolicator import Symbolicator
from profd.settings import Settings
from profd.store import BlobStore, Index, Organization, ProfileStore, Project, ProjectKey
from profd.symbols.store import SymbolStore, UploadLimits
from profd.symbols.symbolicator import LocalSymbolicator

DEFAULT_SLUG = "default"


@dataclass
class Services:
    settings: Settings
    index: Index
    blobs: BlobStore
    profiles: ProfileStore
    symbolicator: Symbolicator
    outcomes: OutcomeTracker
    queue: SqliteQueue
    symbols: SymbolStore

    def task_context(self) -> TaskContext:
        return TaskContext(
            directory=self.index,
            store=self.profiles,
            symbolicator=self.symbolicator,
            outcomes=self.outcomes,
            unsampled_profiles_enabled=self.settings.unsampled_profiles_enabled,
            default_retention_days=self.settings.default_retention_days,
            max_profile_size=self.settings.max_profile_size,
        )

    def default_project(self) -> tuple[Organization, Project]:
        """Organization and project ``default``, created on first use (first start)."""
        organization = self.index.organization_by_slug(DEFAULT_SLUG) or self.index.create_organization(
            DEFAULT_SLUG, "Default"
        )
        for project in self.index.projects(organization.id):
            if project.slug == DEFAULT_SLUG:
                return organization, project
        return organization, self.index.create_project(organization.id, DEFAULT_SLUG, "Default")

    def dsn(self, project: Project) -> str:
        """The project's DSN: its first key, an active one while there is one."""
        return self.key_dsn(self.index.keys(project.id)[0])

    def key_dsn(self, key: ProjectKey) -> str:
        scheme, _, host = self.settings.dsn_base_url.partition("://")
        return f"{scheme}://{key.public_key}@{host.rstrip('/')}/{key.project_id}"

    def envelope_endpoint(self) -> EnvelopeEndpoint:
        return EnvelopeEndpoint(
            directory=self.index,
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
        self.index.close()


def open_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    index = Index(settings.index_path)
    blobs = BlobStore(settings.blob_store_url)
    symbols = SymbolStore(
        settings.data_dir / "symbols",
        UploadLimits(
            chunk_size=settings.upload_chunk_size,
            max_request_size=settings.upload_max_request_size,
            max_file_size=settings.upload_max_file_size,
        ),
    )
    return Services(
        settings=settings,
        index=index,
        blobs=blobs,
        profiles=ProfileStore(blobs, index, settings.default_retention_days),
        symbolicator=LocalSymbolicator(symbols),
        symbols=symbols,
        outcomes=OutcomeTracker(index),
        queue=SqliteQueue(settings.queue_path),
    )
