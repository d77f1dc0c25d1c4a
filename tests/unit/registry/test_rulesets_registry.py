"""Rule sets in the registry: numbered versions written once, checksum, who and why, aliases with history."""

from __future__ import annotations

from pathlib import Path

import pytest

from txguard.contract.errors import ChecksumMismatchError, RegistryError, RuleSetNotFoundError
from txguard.contract.models import RuleSetSpec
from txguard.registry import open_registry
from txguard.registry.rulesets import RuleSetRegistry
from txguard.registry.store import LocalBlobStore

SPEC = RuleSetSpec(rules=[{"name": "a", "condition": "amount > 5", "outcome": "review", "reason": "x"},
                          {"name": "b", "condition": "score > 0.5", "outcome": "block", "reason": "y"}])


def test_publish_promote_rollback(tmp_path: Path) -> None:
    reg = RuleSetRegistry(LocalBlobStore(str(tmp_path)))
    first = reg.publish(SPEC, saved_by="ana@example.com", reason="new attack")
    second = reg.publish(SPEC, saved_by="bo", reason="again")
    assert (first.version, second.version) == ("r1", "r2")
    assert first.rules == ["a", "b"] and first.outcomes == {"review": 1, "block": 1}
    assert first.saved_by == "ana@example.com" and first.reason == "new attack" and len(first.sha256) == 64
    reg.promote("r1")
    reg.promote("r2")
    assert reg.aliases() == {"production": "r2"}
    loaded = reg.load("production")
    assert loaded.spec == SPEC and loaded.metadata.version == "r2"
    assert reg.rollback() == "r1" and reg.resolve("production") == "r1"
    with pytest.raises(RegistryError, match="no previous version"):
        reg.rollback()
    described = reg.describe()
    assert [v["version"] for v in described["versions"]] == ["r1", "r2"]  # type: ignore[index]
    assert open_registry(str(tmp_path)).aliases() == {}  # model aliases are apart


def test_refusals(tmp_path: Path) -> None:
    reg = RuleSetRegistry(LocalBlobStore(str(tmp_path)))
    with pytest.raises(RegistryError, match="needs a reason"):
        reg.publish(SPEC, saved_by="x", reason="  ")
    with pytest.raises(RuleSetNotFoundError):
        reg.load("production")
    with pytest.raises(RuleSetNotFoundError):
        reg.promote("r9")
    with pytest.raises(RegistryError, match="invalid rule set alias"):
        reg.promote(reg.publish(SPEC, saved_by="x", reason="y").version, alias="r2")
    (tmp_path / "rulesets" / "versions" / "r1" / "ruleset.json").write_text("{}")
    with pytest.raises(ChecksumMismatchError):
        reg.load("r1")
