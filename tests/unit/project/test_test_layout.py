"""Test modules are collected by basename (no packages under tests/): two with one name break collection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]


def test_test_module_basenames_are_unique() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert names, "no test modules found"
    assert not [name for name, n in names.items() if n > 1]
