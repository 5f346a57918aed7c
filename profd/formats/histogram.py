"""Log-bucketed duration histograms: percentiles that can be summed across rollup buckets.

A duration d > 0 falls in bin ceil(log_gamma(d)); every value of a bin is within
ALPHA of the bin's representative value (the DDSketch construction), so a percentile read
from a merged histogram is within 1% of the exact nearest-rank percentile.  Histograms
are sparse ({bin: count}); a function's self times cover a few dozen bins.

An encoding of data, like the profile formats beside it: the store's rollups add, merge and
serialize these, the query side reads percentiles from them, so it lives where both may look.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import msgspec

ALPHA = 0.01  # relative accuracy of a percentile
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)

Histogram = dict[int, int]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(dict[int, int]).decode


def bin_of(duration_ns: int) -> int:
    """The bin of a duration; 0 holds zero (and any negative clock skew)."""
    if duration_ns <= 0:
        return 0
    return max(1, math.ceil(math.log(duration_ns) / _LOG_GAMMA))


def value_of(bin_: int) -> int:
    """The representative duration of a bin (the one minimising the relative error)."""
    if bin_ <= 0:
        return 0
    return round(2 * GAMMA**bin_ / (GAMMA + 1))


def add(histogram: Histogram, durations: Iterable[int], sign: int = 1) -> None:
    for duration in durations:
        key = bin_of(duration)
        histogram[key] = histogram.get(key, 0) + sign


def merge(into: Histogram, other: Histogram, sign: int = 1) -> None:
    for key, count in other.items():
        into[key] = into.get(key, 0) + sign * count


def nearest_rank(n: int, q: float) -> int:
    """The nearest-rank method: the q-quantile of n values is the ceil(n*q)-th smallest
    (1-based, at least the first)."""
    return max(1, math.ceil(n * q))


def exact_quantile(ordered: Sequence[int], q: float) -> int:
    """The exact nearest-rank percentile of sorted values (0 for none)."""
    return ordered[nearest_rank(len(ordered), q) - 1] if ordered else 0


def quantile(histogram: Histogram, q: float) -> int:
    """The nearest-rank percentile read from a histogram: within ALPHA of `exact_quantile`
    of the values added to it."""
    total = sum(count for count in histogram.values() if count > 0)
    if not total:
        return 0
    rank = nearest_rank(total, q)
    seen = 0
    for key in sorted(histogram):
        if histogram[key] > 0:
            seen += histogram[key]
            if seen >= rank:
                return value_of(key)
    raise AssertionError("unreachable: rank <= total")


def encode(histogram: Histogram) -> bytes:
    return _encode({key: count for key, count in histogram.items() if count > 0})


def decode(data: bytes) -> Histogram:
    return _decode(data)
