"""Bulk work in Python: many small objects made at once.

CPython's cyclic garbage collector runs every few hundred new container objects and, in a
process holding many, walks them all: resolving and projecting 100,000 codes spent about
0.9 s of 2.8 in it, while that work makes no reference cycles to collect (its dicts and
lists are freed by reference counting as usual). :func:`gc_paused` holds the collector
off for such work; it runs again when the last piece of bulk work in the process ends.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

__all__ = ["bulk", "gc_paused"]

_lock = threading.Lock()
_holders = 0
_was_enabled = True

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off inside the block (and on again, if it was, when the last
    of the process's blocks ends: threads of one worker share the collector)."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()


def bulk(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with the cyclic collector paused (:func:`gc_paused`)."""

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with gc_paused():
            return func(*args, **kwargs)

    return run
