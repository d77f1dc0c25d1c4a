"""The rule_promotion scenario's checks, on log lines as the scoring function writes them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from txguard.reliability import rule_promotion

T0 = 1_800_000_000.0


def at(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds, UTC).isoformat().replace("+00:00", "Z")


LINES = [
    {"event": "rules_loaded", "rule_set": "r1", "role": "rules", "pid": 11, "time": at(-5)},
    {"event": "rules_loaded", "rule_set": "r2", "role": "rules", "pid": 11, "time": at(3.1)},
    {"event": "rules_loaded", "rule_set": "r2", "role": "staging_rules", "pid": 12, "time": at(1.0)},
    {"event": "rules_loaded", "rule_set": "r2", "role": "rules", "pid": 12, "time": at(5.0)},
    {"event": "rules_loaded", "rule_set": "r1", "role": "rules", "pid": 12, "time": at(21.0)},
    {"path": "/score", "outcome": "review", "transaction_id": "rpr-1", "rule_set": "r2", "time": at(6)},
    {"path": "/score", "outcome": "allow", "transaction_id": "rpr-2", "rule_set": "r1", "time": at(30)},
    {"path": "/score", "outcome": "allow", "transaction_id": "pro-2", "rule_set": "r9", "time": at(30)},
]


def test_switches_count_the_applied_role_only() -> None:
    assert rule_promotion.switches(LINES, "r2", T0) == {11: 3.1, 12: 5.0}
    assert rule_promotion.switches(LINES, "r1", T0 + 20) == {12: 1.0}


def test_logged_rule_sets_and_after_rollback() -> None:
    assert rule_promotion.rule_sets_logged(LINES, "rpr") == {"rpr-1": {"r2"}, "rpr-2": {"r1"}}
    assert rule_promotion.rule_sets_after(LINES, "rpr", T0 + 25) == Counter({"r1": 1})


def test_verdict() -> None:
    ok = {"by_rule_set": {"r1": 10, "r2": 12}, "not_matching": 0, "examples": []}
    assert rule_promotion.verdict("r1", "r2", {11: 3.1, 12: 5.0}, {11: 1.0, 12: 1.0}, 2, 0, {}, ok,
                                  Counter({"r1": 4})) == []
    bad = {"by_rule_set": {"r1": 10}, "not_matching": 2, "examples": ["rpr-3"]}
    failed = rule_promotion.verdict("r1", "r2", {11: 3.1}, {11: 31.0, 12: 1.0}, 2, 1, {"HTTPError": 1}, bad,
                                    Counter({"r2": 1}))
    assert any("1 of 2 scoring workers" in f for f in failed)
    assert any("more than 30 s" in f for f in failed)
    assert any("2 decisions do not match" in f for f in failed)
    assert any("no decision made with the promoted rule set r2" in f for f in failed)
    assert any("still decided with" in f for f in failed)
    assert any("5xx" in f for f in failed) and any("retried" in f for f in failed)
