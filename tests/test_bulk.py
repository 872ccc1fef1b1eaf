"""The cyclic collector paused for bulk work, and always given back."""

from __future__ import annotations

import gc
import threading

import pytest

from geo.platform.bulk import bulk, gc_paused


def test_paused_inside_on_again_after_even_on_error() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: still off when the inner block ends
            pass
        assert not gc.isenabled()
    assert gc.isenabled()

    @bulk
    def fails() -> None:
        assert not gc.isenabled()
        raise ValueError("bad table")

    with pytest.raises(ValueError):
        fails()
    assert gc.isenabled()


def test_threads_share_it_and_the_last_one_out_turns_it_on() -> None:
    inside, leave = threading.Event(), threading.Event()

    def long_bulk() -> None:
        with gc_paused():
            inside.set()
            leave.wait(5)

    other = threading.Thread(target=long_bulk)
    other.start()
    inside.wait(5)
    with gc_paused():
        pass
    assert not gc.isenabled()  # the other thread's bulk work is still running
    leave.set()
    other.join()
    assert gc.isenabled()


def test_left_off_when_it_was_off_before() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
