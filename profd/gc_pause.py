"""Pausing Python's cyclic garbage collector around work that only allocates.

Decoding a profile creates tens of thousands of small dicts and lists; each allocation
burst makes the collector rescan everything alive, which costs more than the decoding when
a process holds much.  Profiles contain no reference cycles, so nothing is lost by waiting:
the collector runs as usual once the work is done.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
