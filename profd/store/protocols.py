"""The store's seams: one protocol per concern, which every backend implements.

- `Directory`: organizations, projects, DSN keys and bearer tokens with scopes.
- `ProfileIndex`: the write side: profile rows (functions, folded call trees, hourly
  rollups), outcomes, retention.
- `ProfileReads`: the read side profd.query builds its answers from: typed questions about
  selections of profiles, answered with rows of profd.store.records, never SQL.
- `BlobStore`: processed profiles as blobs, written once.

`profd.services` builds the implementations from the settings' URLs; the SQLite ones are in
profd.store.sqlite.  tests/backends runs one conformance suite per protocol on each.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Protocol

from profd.formats.flame_tree import FlameTree, Frame
from profd.formats.outcome import OutcomeRecord
from profd.formats.rows import FunctionMetrics, ProfileMetadata
from profd.store.records import (
    FunctionRollup,
    Organization,
    OutcomeBucket,
    OutcomeCount,
    ProfileFilter,
    ProfileFunction,
    Project,
    ProjectKey,
    Sort,
    Span,
    Token,
)
from profd.store.tenancy import SCOPES


class Directory(Protocol):
    """Who is who: organizations, their projects, DSN keys and tokens (profd.store.tenancy
    holds the rules every implementation applies)."""

    def create_organization(
        self, slug: str, name: str | None = None, retention_days: int | None = None
    ) -> Organization: ...

    def organization(self, organization_id: int) -> Organization | None: ...

    def organization_by_slug(self, slug: str) -> Organization | None: ...

    def create_project(self, organization_id: int, slug: str, name: str | None = None) -> Project:
        """A new project and its first DSN key, both or neither.  InvalidSlug for a slug
        outside the rule, SlugTaken for one the organization uses."""
        ...

    def project(self, project_id: int) -> Project | None:
        """None for ids no project has, out-of-range ones (URLs carry them) included."""
        ...

    def projects(self, organization_id: int | None = None) -> list[Project]:
        """The organization's projects (every project when None), oldest first."""
        ...

    def project_by_slug(self, organization_id: int, slug: str) -> Project | None: ...

    def create_key(self, project_id: int) -> ProjectKey: ...

    def keys(self, project_id: int) -> list[ProjectKey]:
        """The project's DSN keys, active ones first, oldest first within each."""
        ...

    def revoke_key(self, project_id: int, public_key: str) -> bool:
        """Deactivate a key of the project; False if the project has no such key."""
        ...

    def key_by_public_key(self, public_key: str) -> ProjectKey | None: ...

    def create_token(self, organization_id: int, name: str = "", scopes: Iterable[str] = SCOPES) -> str:
        """A new token's secret (every scope unless told)."""
        ...

    def issue_token(
        self, organization_id: int, name: str, scopes: Iterable[str], parent_id: int | None = None
    ) -> tuple[Token, str]:
        """A new token and its secret (the only time the secret exists).  `parent_id` is the
        token minting it, which must be a live token of the organization (else RevokedToken).
        InvalidScope for unknown or no scopes."""
        ...

    def tokens(self, organization_id: int) -> list[Token]:
        """The organization's tokens, revoked ones included, oldest first."""
        ...

    def revoke_token(self, organization_id: int, token_id: int) -> bool:
        """Revoke the token and every token minted under it; False if the organization has
        no token `token_id`."""
        ...

    def token_for_secret(self, secret: str) -> Token | None:
        """The live token whose secret this is (None for revoked and unknown ones)."""
        ...

    def organization_for_token(self, token: str) -> Organization | None: ...

    def check(self) -> None:
        """Raises BackendUnavailable unless the backend answers (for readiness)."""
        ...

    def close(self) -> None: ...


class ProfileIndex(Protocol):
    """The write side: what the pipeline stores besides the blob, and what retention removes."""

    def insert_profile(
        self,
        metadata: ProfileMetadata,
        functions: Sequence[FunctionMetrics] = (),
        flame: FlameTree | None = None,
    ) -> bool:
        """Index a profile with its functions and flame tree (its frames into the frame
        dictionary), and (sampled ones) add it to its hourly and daily buckets, at once;
        False when it was indexed already (a redelivery)."""
        ...

    def expired(self, now: float, limit: int = 1000) -> list[ProfileMetadata]:
        """Profiles (sampled or not) whose retention has passed at `now`, oldest first."""
        ...

    def delete_profiles(self, profiles: Sequence[ProfileMetadata]) -> None:
        """Remove profiles, their rows, and their share of the rollups."""
        ...

    def record_outcomes(self, records: Sequence[OutcomeRecord]) -> None:
        """Outcomes, at once, and `has_profiles` of their projects.  A record whose `key`
        was recorded already adds nothing (a redelivery); records without a key always add."""
        ...

    def recorded_outcome_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these idempotency keys are recorded: a task whose outcomes are there
        already is a redelivery, whose output messages went out before them."""
        ...

    def expire_outcomes(self, now: float, default_retention_days: int) -> int:
        """Delete outcomes past their organization's retention; how many went."""
        ...

    def mark_has_profiles(self, project_id: int) -> bool:
        """Set the project's ``has_profiles``; True only on the first transition."""
        ...

    def check(self) -> None:
        """Raises BackendUnavailable unless the backend answers (for readiness)."""
        ...

    def close(self) -> None: ...


class ProfileReads(Protocol):
    """The read side.  A selection (`ProfileFilter`) covers an organization's sampled
    profiles; the rollup questions take one whose start and end are whole hours (or None)
    and answer from the hourly buckets of profiles that started in those hours.  Answers
    that grow with the data are iterators, decoded as the caller consumes them."""

    def profile(self, project_id: int, profile_id: str) -> ProfileMetadata | None: ...

    def find_profile(self, profile_id: str) -> ProfileMetadata | None:
        """A profile by id in any project (sampled or not)."""
        ...

    def profiles(self, project_id: int | None = None, limit: int = 100) -> list[ProfileMetadata]:
        """Stored (sampled) profiles of any organization, newest first."""
        ...

    def functions(self, project_id: int, profile_id: str) -> list[FunctionMetrics]:
        """A profile's functions, most self time first, then by fingerprint."""
        ...

    def list_profiles(
        self,
        organization_id: int,
        where: ProfileFilter,
        *,
        sort: Sort,
        descending: bool,
        after: tuple[float | int, str] | None,
        limit: int,
    ) -> list[ProfileMetadata]:
        """The selection ordered by (`sort`, profile id), from just past `after` (a sort value
        and a profile id), at most `limit`."""
        ...

    def count_profiles(self, organization_id: int, where: ProfileFilter) -> int: ...

    def flame_trees(
        self, organization_id: int, where: ProfileFilter, sample: int | None = None
    ) -> Iterator[FlameTree]:
        """The flame tree of each profile of the selection; with `sample`, of the first
        `sample` profiles by profile id only (random ids: a uniform sample)."""
        ...

    def frame_names(self, ids: Collection[int]) -> dict[int, Frame]:
        """(name, package, in_app) of the frame ids the dictionary has."""
        ...

    def profile_functions(self, organization_id: int, where: ProfileFilter) -> Iterator[ProfileFunction]:
        """Every function of every profile of the selection."""
        ...

    def rollup_profile_count(self, organization_id: int, periods: ProfileFilter, span: Span = "hour") -> int:
        """Profiles in the buckets of the selection's whole hours (or days)."""
        ...

    def rollup_flame_trees(
        self, organization_id: int, periods: ProfileFilter, span: Span = "hour"
    ) -> Iterator[FlameTree]:
        """The merged flame tree of each bucket of the selection's whole hours (or days)."""
        ...

    def rollup_functions(
        self, organization_id: int, periods: ProfileFilter, span: Span = "hour"
    ) -> Iterator[FunctionRollup]:
        """Each function of each bucket of the selection's whole hours (or days)."""
        ...

    def outcome_counts(self, project_id: int | None = None) -> list[OutcomeCount]:
        """Outcomes by outcome, reason and category (every project's when None)."""
        ...

    def outcome_series(
        self, organization_id: int, *, start: float | None, end: float | None, interval: int
    ) -> list[OutcomeBucket]:
        """The organization's outcomes in [start, end) by `interval`-second bucket, outcome,
        reason and category, ordered by bucket, outcome, category, reason."""
        ...

    def check(self) -> None:
        """Raises BackendUnavailable unless the backend answers (for readiness)."""
        ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    """Profile blobs by key, written once (profd.store.blobs: obstore)."""

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store `data` under `key` unless something is there; True if this call wrote it."""
        ...

    def get(self, key: str) -> bytes:
        """The blob; BlobNotFound when there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob if there is one."""
        ...

    def check(self) -> None:
        """BackendUnavailable unless the store answers (for readiness)."""
        ...
