"""Two calls of one delivery at once: both done before it returns, each with its own outcome."""

from __future__ import annotations

import threading

import pytest

from txguard.contract.trace import TraceContext, bind, current
from txguard.enrichment.overlap import Overlap


def test_both_run_at_the_same_time_and_both_are_done_on_return() -> None:
    overlap = Overlap(workers=2)
    barrier = threading.Barrier(2, timeout=10)  # broken (an error) unless both calls wait at once
    done: list[str] = []

    def call(name: str) -> str:
        barrier.wait()
        done.append(name)
        return name

    main, side = overlap(lambda: call("main"), lambda: call("side"))
    assert (main.get(), side.get()) == ("main", "side")
    assert sorted(done) == ["main", "side"]
    overlap.close()


def test_the_side_call_runs_in_the_callers_context() -> None:
    overlap = Overlap(workers=1)
    trace = TraceContext.new()
    with bind(trace):
        _, side = overlap(lambda: None, current)
    assert side.get() is trace
    overlap.close()


def test_each_failure_is_handed_back_not_raised() -> None:
    overlap = Overlap(workers=1)

    def fail(msg: str) -> None:
        raise ValueError(msg)

    main, side = overlap(lambda: fail("main"), lambda: fail("side"))
    assert str(main.error) == "main" and str(side.error) == "side"
    with pytest.raises(ValueError, match="side"):
        side.get()
    main, side = overlap(lambda: 1, lambda: fail("side"))
    assert main.get() == 1 and side.error is not None
    overlap.close()


def test_without_a_side_call_main_runs_alone_in_the_callers_thread() -> None:
    overlap = Overlap(workers=1)
    main, side = overlap(threading.get_ident, None)
    assert main.get() == threading.get_ident() and side.get() is None
    assert overlap._pool is None  # no pool started for nothing


def test_a_started_call_runs_while_the_caller_goes_on_and_is_awaited_where_needed() -> None:
    overlap = Overlap(workers=1)
    barrier = threading.Barrier(2, timeout=10)  # broken unless the caller and the side call meet
    trace = TraceContext.new()

    def side() -> object:
        barrier.wait()
        return current()

    with bind(trace):
        pending = overlap.start(side)
    barrier.wait()  # the caller's own work, at the same time
    first = pending.wait()
    assert first.get() is trace and pending.wait() is first  # the same outcome however often awaited
    failing = overlap.start(lambda: 1 / 0)
    assert isinstance(failing.wait().error, ZeroDivisionError)
    overlap.close()


def test_all_runs_every_call_at_once_and_returns_their_values_in_order() -> None:
    overlap = Overlap(workers=3)
    barrier = threading.Barrier(3, timeout=10)  # broken unless the three wait at once

    def call(value: int) -> int:
        barrier.wait()
        return value

    assert overlap.all([lambda v=v: call(v) for v in (1, 2, 3)]) == [1, 2, 3]
    assert overlap.all([]) == [] and overlap.all([lambda: 7]) == [7]
    overlap.close()


def test_all_waits_for_every_call_then_raises_the_first_error_in_call_order() -> None:
    overlap = Overlap(workers=2)
    finished = threading.Event()

    def slow() -> None:
        finished.wait(0.2)
        finished.set()

    def fails(message: str) -> None:
        raise ValueError(message)

    with pytest.raises(ValueError, match="first"):  # raised at once by the caller's own call
        overlap.all([lambda: fails("first"), slow, lambda: fails("third")])
    assert finished.is_set()  # the slow call, on a pool thread, was done before the error was raised
    overlap.close()
