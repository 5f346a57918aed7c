"""Percentiles read from log histograms stay within ALPHA of the exact nearest-rank ones,
however the histograms were split and merged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from profd.formats import histogram

durations = st.lists(st.integers(0, 10**12), min_size=1, max_size=300)


@given(durations, st.sampled_from([0.5, 0.75, 0.95, 0.99]), st.integers(1, 5))
def test_percentiles_are_within_alpha_of_exact(values: list[int], q: float, parts: int) -> None:
    merged: histogram.Histogram = {}
    for part in range(parts):
        # Round-tripped through storage, as the rollups keep them.
        piece: histogram.Histogram = {}
        histogram.add(piece, values[part::parts])
        histogram.merge(merged, histogram.decode(histogram.encode(piece)))
    exact = histogram.exact_quantile(sorted(values), q)
    estimate = histogram.quantile(merged, q)
    assert abs(estimate - exact) <= histogram.ALPHA * exact + 1


def test_removing_what_was_added_leaves_nothing() -> None:
    h: histogram.Histogram = {}
    histogram.add(h, [5, 1_000, 1_000_000])
    histogram.add(h, [1_000], sign=-1)
    assert histogram.quantile(h, 0.5) == 5  # nearest rank 1 of the 2 left
    assert histogram.quantile(h, 0.99) == histogram.value_of(histogram.bin_of(1_000_000))
    assert histogram.decode(histogram.encode(h)) == {histogram.bin_of(5): 1, histogram.bin_of(1_000_000): 1}
    assert histogram.quantile({}, 0.95) == 0
