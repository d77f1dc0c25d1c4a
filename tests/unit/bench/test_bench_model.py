"""The benchmark model's cache follows the feature set: a model cached before a feature was added is
not reused for rows the code computes with more columns."""

from __future__ import annotations

import pytest

from txguard.bench import model
from txguard.features import wallet


def test_the_cache_key_changes_with_the_feature_set(monkeypatch: pytest.MonkeyPatch) -> None:
    now = model._key()
    assert model._key() == now  # stable for one feature set
    monkeypatch.setattr(wallet, "FEATURE_NAMES", (*wallet.FEATURE_NAMES, "a_new_feature"))
    assert model._key() != now
