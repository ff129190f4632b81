"""The cyclic garbage collector's young-generation threshold, raised for a host process.

A host holds a poll's worth of envelopes in flight (hundreds, each a dozen container
objects). With CPython's default threshold (700 allocations), those survive two young
collections, are promoted to the oldest generation, and set off full collections of
the whole heap every few thousand envelopes: measured on the echo benchmarks, the
collector took 30-40 % of the host's time. A young collection walks every young object
still alive, the envelopes in flight among them, so the fewer collections the less
work: with the threshold at 500,000 a benchmark's 100,000 commands go through without
one. Nothing is ever left uncollected; cyclic garbage (which the data path hardly makes:
docs/runtime.md, "Garbage collection") only waits longer.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["raise_gc_threshold"]

logger = logging.getLogger("onex_actors.host")


def raise_gc_threshold(threshold: int | None) -> bool:
    """Raise the process's young-generation GC threshold to ``threshold``; never lower it.

    ``None`` leaves the interpreter's setting alone. Returns whether it changed.
    """
    young, middle, old = gc.get_threshold()
    if threshold is None or young >= threshold:
        return False
    gc.set_threshold(threshold, middle, old)
    logger.debug("garbage collector: young-generation threshold %d -> %d", young, threshold)
    return True
