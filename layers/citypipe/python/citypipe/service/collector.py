"""The cyclic garbage collector, paused while the edge makes a batch.

A batch's readings are hundreds of thousands of small acyclic objects (tuples, strings,
floats) alive at once: every 700 allocations the collector wakes, and every so often it
walks all of them to find no cycle. Reference counting frees them all the same; pausing
the collector while a batch is built and serialized saved ~20 % of the edge's CPU
(decision 72).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside; as it was after (nested pauses leave it paused)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@contextmanager
def resumed() -> Iterator[None]:
    """The collector running inside a pause (a wait in it: a bridge's back-off, minutes in
    all, while the process's other threads go on allocating); paused again after, if it
    was."""
    pausing = not gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        if pausing:
            gc.disable()
