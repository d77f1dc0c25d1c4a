"""The in-process timing loops: what each timed call receives, and the run timed alone."""

from __future__ import annotations

import itertools

from tests.scoring_fixtures import synthetic_rows, tiny_metadata, tiny_model
from txguard.bench.inproc import paired, run_alone, time_each
from txguard.scoring.runtime import ModelRuntime
from txguard.training.onnx_export import margin_graph


def test_paired_alternates_and_gives_each_call_its_own_freshly_built_item() -> None:
    calls: list[tuple[str, tuple[int, int]]] = []
    serial = itertools.count()

    def make(item: int) -> tuple[int, int]:
        return item, next(serial)

    first, second = paired(lambda x: calls.append(("a", x)), lambda x: calls.append(("b", x)), [10, 20, 30], 6,
                           warmup=0, make=make)
    assert first["n"] == second["n"] == 6.0
    assert [name for name, _ in calls] == ["a", "b", "b", "a"] * 3  # who goes first alternates
    items = [x for _, x in calls]
    assert [item for item, _ in items] == [10, 10, 20, 20, 30, 30, 10, 10, 20, 20, 30, 30]
    assert len({built for _, built in items}) == 12  # no call reuses the other's item


def test_paired_without_make_passes_the_items_themselves() -> None:
    seen: list[object] = []
    items = [object(), object()]
    paired(seen.append, seen.append, items, 2, warmup=0)
    assert seen == [items[0], items[0], items[1], items[1]]


def test_time_each_builds_each_item_untimed_before_the_call() -> None:
    built: list[int] = []
    got: list[int] = []
    stats = time_each(got.append, [1, 2, 3], 5, warmup=0, make=lambda i: built.append(i) or i * 10)
    assert stats["n"] == 5.0 and got == [10, 20, 30, 10, 20] and built == [1, 2, 3, 1, 2]


def test_run_alone_runs_the_row_written_just_before() -> None:
    runtime = ModelRuntime(margin_graph(tiny_model()[1]), tiny_metadata())
    rows = synthetic_rows(7, seed=3).tolist()
    stats = run_alone(runtime, rows, 7)
    assert stats["n"] == 7.0
    _write, _run, read = runtime.bound_steps()
    assert read() == runtime.predict(synthetic_rows(7, seed=3))[-1]  # the last row written was the one run
