"""Small index rows for query tests: what the store would write for a profile."""

from __future__ import annotations

from profd.formats.rows import FunctionMetrics, ProfileMetadata


def function_ran(fingerprint: int, self_times_ns: list[int], package: str = "app") -> FunctionMetrics:
    """A function that ran `len(self_times_ns)` times on one thread, named f<fingerprint>."""
    return FunctionMetrics(
        fingerprint=fingerprint,
        function=f"f{fingerprint}",
        package=package,
        in_app=True,
        thread_id="1",
        self_times_ns=self_times_ns,
        total_times_ns=self_times_ns,
        sum_self_time_ns=sum(self_times_ns),
        sample_count=len(self_times_ns),
        max_duration=max(self_times_ns),
    )


def indexed_profile(
    project_id: int,
    profile_id: str,
    start: float,
    *,
    transaction: str | None,
    release: str | None,
    environment: str = "prod",
    sampled: bool = True,
) -> ProfileMetadata:
    """A one-second python profile of organization 1 as the index keeps it."""
    return ProfileMetadata(
        organization_id=1,
        project_id=project_id,
        profile_id=profile_id,
        kind="sample_v2",
        platform="python",
        transaction_name=transaction,
        release=release,
        environment=environment,
        start=start,
        end=start + 1,
        duration_ns=10**9,
        retention_days=90,
        received=int(start),
        blob_key="k",
        sampled=sampled,
    )
