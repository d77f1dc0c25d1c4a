"""The benchmark model's cache follows the feature set and the exporter: a model cached before a feature
was added is not reused for rows the code computes with more columns, nor a graph another exporter wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from txguard.bench import model
from txguard.features import wallet


def test_the_cache_key_changes_with_the_feature_set(monkeypatch: pytest.MonkeyPatch) -> None:
    now = model._key()
    assert model._key() == now  # stable for one feature set
    monkeypatch.setattr(wallet, "FEATURE_NAMES", (*wallet.FEATURE_NAMES, "a_new_feature"))
    assert model._key() != now


def test_the_cache_key_changes_with_the_exporter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A graph cached by another exporter (say, before the margin graph) is written again."""
    from txguard.training import onnx_export

    now = model._key()
    edited = tmp_path / "onnx_export.py"
    edited.write_bytes(Path(onnx_export.__file__).read_bytes() + b"\n# another exporter\n")
    monkeypatch.setattr(onnx_export, "__file__", str(edited))
    assert model._key() != now
