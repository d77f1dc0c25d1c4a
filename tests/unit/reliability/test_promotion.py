"""The promotion scenario's checks, on log lines and decisions as the functions write them."""

from __future__ import annotations

import json
from collections import Counter

from txguard.reliability import promotion

T0 = 1_800_000_000.0  # epoch seconds of the promote in these lines


def at(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def loaded(version: str, pid: int, seconds: float) -> dict:
    return {"time": at(seconds), "event": "model_loaded", "model_version": version, "pid": pid}


def request(tid: str, version: str, seconds: float, status: int = 200) -> dict:
    line = {"time": at(seconds), "path": "/score", "status": status, "transaction_id": tid, "model_version": version}
    if status == 200:
        line["outcome"] = "allow"
    return line


LINES = [
    loaded("v1", 11, -60), request("pro-1", "v1", -1), loaded("v2", 11, 4.2), loaded("v2", 12, 6.0),
    request("pro-2", "v2", 7), request("pro-3", "v2", 8, status=503), request("pro-3", "v2", 9),
    request("other-1", "v9", 9), loaded("v1", 12, 22.5), loaded("v1", 11, 24.0), request("pro-4", "v1", 25),
]


def test_switches_are_per_worker_and_after_the_change() -> None:
    assert promotion.switches(LINES, "v2", T0) == {11: 4.2, 12: 6.0}
    assert promotion.switches(LINES, "v1", T0 + 20) == {12: 2.5, 11: 4.0}  # not the cold start of pid 11


def test_scored_versions_and_failures_of_the_scenario_only() -> None:
    versions, errors = promotion.scored(LINES, "pro")
    assert versions == {"pro-1": {"v1"}, "pro-2": {"v2"}, "pro-3": {"v2"}, "pro-4": {"v1"}}
    assert errors == 1
    assert promotion.versions_after(LINES, "pro", T0 + 24.5) == Counter({"v1": 1})


def test_decisions_must_name_a_version_that_scored_them() -> None:
    versions, _ = promotion.scored(LINES, "pro")
    decisions = {tid: [json.dumps({"model_version": v}).encode()]
                 for tid, v in (("pro-1", "v1"), ("pro-2", "v2"), ("pro-4", "v2"))}
    names = promotion.decision_versions(decisions, versions)
    assert names["by_version"] == {"v1": 1, "v2": 2} and names["not_matching_scoring_log"] == 1
    failed = promotion.verdict("v1", "v2", {11: 4.2, 12: 6.0}, {12: 2.5}, workers=2, server_errors=1,
                               retries={}, names=names, after_rollback=Counter({"v1": 3, "v2": 1}))
    assert failed == ["rollback: 1 of 2 scoring workers switched", "1 scoring requests failed (5xx)",
                      "1 decisions name a version that did not score them",
                      "after every worker rolled back, requests still scored by {'v1': 3, 'v2': 1}"]
    ok = promotion.decision_versions({"pro-1": [b'{"model_version":"v1"}'], "pro-2": [b'{"model_version":"v2"}']},
                                     versions)
    assert promotion.verdict("v1", "v2", {11: 4.2, 12: 6.0}, {12: 2.5, 11: 4.0}, 2, 0, {}, ok,
                             Counter({"v1": 5})) == []
    assert promotion.verdict("v1", "v2", {11: 31.0, 12: 6.0}, {12: 2.5, 11: 4.0}, 2, 0, {}, ok,
                             Counter({"v1": 5})) == ["promote: switched after more than 30 s: {11: 31.0}"]
