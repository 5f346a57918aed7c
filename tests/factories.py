"""Small index rows for query tests: what the store would write for a profile."""

from __future__ import annotations

from profd.analysis.functions import FunctionMetrics


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
