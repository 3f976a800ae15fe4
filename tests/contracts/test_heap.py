"""`freeze_startup_heap` takes what is alive now out of the collector's sight, and only that."""

from __future__ import annotations

import gc

from contracts.heap import freeze_startup_heap


def test_what_is_alive_is_frozen_and_later_objects_are_still_collected() -> None:
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > 1000  # the interpreter and the test's imports

        class Cycle:
            me: object

        later = Cycle()
        later.me = later  # a cycle made after the freeze: only the collector frees it
        del later
        assert gc.collect() >= 1
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
