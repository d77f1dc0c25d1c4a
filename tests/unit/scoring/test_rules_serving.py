"""Rule sets in the scoring function: applied after the model on /score and /score/batch, followed
like the model alias (promote, rollback, refusal), shadowed from `staging`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.scoring_fixtures import enriched_transactions, parity_probe, tiny_metadata, tiny_model
from txguard.contract.models import RuleSetSpec
from txguard.contract.settings import ScoringSettings
from txguard.registry import STAGING, open_registry
from txguard.registry.rulesets import RuleSetRegistry
from txguard.registry.store import LocalBlobStore
from txguard.scoring.http import BytesBody
from txguard.scoring.service import ScoringService

BIG = {"name": "big_amount", "condition": "amount > 0.01", "outcome": "block", "reason": "every amount here"}
TRANSFER = {"name": "transfers", "condition": "type == 'transfer'", "outcome": "review", "reason": "a transfer"}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logs() -> Any:
    handler = Records()
    logger = logging.getLogger("txguard")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def rulesets(path: Path) -> RuleSetRegistry:
    return RuleSetRegistry(LocalBlobStore(str(path)))


def save(path: Path, *rules: dict[str, str], alias: str | None = "production") -> str:
    meta = rulesets(path).publish(RuleSetSpec(rules=list(rules)), saved_by="tester", reason="test")
    if alias:
        rulesets(path).promote(meta.version, alias)
    return meta.version


@pytest.fixture
def reg_path(tmp_path: Path) -> Path:
    path = tmp_path / "registry"
    reg = open_registry(str(path))
    reg.promote(reg.publish(tiny_model(0)[1], tiny_metadata(parity_probe=parity_probe(0))).version)
    return path


def load(reg_path: Path, **env: Any) -> ScoringService:
    return ScoringService.load(ScoringSettings(MODEL_URI=f"{reg_path}@production", MODEL_POLL_S=3600,
                                               DRIFT_WINDOW_S=0, **env))


def post(service: ScoringService, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    resp = service.handle("POST", path, {"Content-Type": "application/json"}, BytesBody(body))
    return resp.status, json.loads(resp.body)


def test_without_a_rule_set_decisions_name_none(reg_path: Path) -> None:
    service = load(reg_path)
    status, decision = post(service, "/score", enriched_transactions()[0].model_dump_json().encode())
    assert status == 200 and decision["rules"] == [] and decision["rule_set"] is None
    assert "rules_us" not in decision["timings"]


def test_rules_apply_after_the_model_on_both_routes(reg_path: Path, logs: Any, capsys: Any) -> None:
    save(reg_path, TRANSFER, BIG)
    service = load(reg_path)
    txs = enriched_transactions()[:40]
    for tx in txs[:5]:
        status, decision = post(service, "/score", tx.model_dump_json().encode())
        assert status == 200 and decision["outcome"] == "block" and decision["rule_set"] == "r1"
        names = [h["rule"] for h in decision["rules"]]
        assert names == (["transfers", "big_amount"] if tx.type == "transfer" else ["big_amount"])
        assert decision["rules"][-1] == {"rule": "big_amount", "outcome": "block", "reason": "every amount here"}
        assert decision["timings"]["rules_us"] >= 0
    body = json.dumps({"transactions": [json.loads(t.model_dump_json()) for t in txs]}).encode()
    status, batch = post(service, "/score/batch", body)
    assert status == 200 and all(d["outcome"] == "block" and d["rule_set"] == "r1" for d in batch["decisions"])
    singles = [post(service, "/score", t.model_dump_json().encode())[1] for t in txs]
    assert [d["rules"] for d in batch["decisions"]] == [d["rules"] for d in singles]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    scored = [line for line in lines if line.get("path") == "/score" and line.get("outcome")]
    assert scored and all(line["rule_set"] == "r1" and "big_amount" in line["rules"] for line in scored)
    batch_line = next(line for line in lines if line.get("path") == "/score/batch")
    assert batch_line["rules"]["big_amount"] == len(txs)
    health = json.loads(service.handle("GET", "/health", {}, BytesBody(b"")).body)
    assert health["rule_set"] == "r1"


def test_the_follower_follows_promote_rollback_and_refuses_a_tampered_set(reg_path: Path, logs: Any) -> None:
    first = save(reg_path, TRANSFER)
    service = load(reg_path)
    tx = enriched_transactions()[3]
    assert post(service, "/score", tx.model_dump_json().encode())[1]["rule_set"] == first
    second = save(reg_path, BIG)
    service.follower.check()
    decision = post(service, "/score", tx.model_dump_json().encode())[1]
    assert decision["rule_set"] == second and decision["outcome"] == "block"
    rulesets(reg_path).rollback()
    service.follower.check()
    assert post(service, "/score", tx.model_dump_json().encode())[1]["rule_set"] == first
    third = save(reg_path, BIG, alias=None)
    data = reg_path / "rulesets" / "versions" / third / "ruleset.json"
    data.write_bytes(data.read_bytes().replace(b"0.01", b"0.02"))
    rulesets(reg_path).promote(third)
    service.follower.check()
    assert post(service, "/score", tx.model_dump_json().encode())[1]["rule_set"] == first
    refused = [r for r in logs.records if getattr(r, "event", None) == "rules_refused"]
    assert refused and refused[0].refused_version == third
    health = json.loads(service.handle("GET", "/health", {}, BytesBody(b"")).body)
    assert "ChecksumMismatchError" in health["refused"][third]
    loaded = [(r.rule_set, r.previous_rule_set) for r in logs.records if getattr(r, "event", None) == "rules_loaded"
              and hasattr(r, "previous_rule_set")]
    assert loaded == [(second, first), (first, second)]


def test_rules_alias_empty_applies_none(reg_path: Path) -> None:
    save(reg_path, BIG)
    service = load(reg_path, RULES_ALIAS="")
    assert post(service, "/score", enriched_transactions()[0].model_dump_json().encode())[1]["rule_set"] is None


def test_staging_rules_run_in_shadow_and_are_never_returned(reg_path: Path, capsys: Any) -> None:
    save(reg_path, TRANSFER)
    save(reg_path, BIG, alias=STAGING)
    service = load(reg_path)
    assert service.observer is not None and service.state.staging_rules is not None
    txs = enriched_transactions()[:30]
    for tx in txs:
        decision = post(service, "/score", tx.model_dump_json().encode())[1]
        assert "big_amount" not in [h["rule"] for h in decision["rules"]]
    service.observer.drain()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"rules_shadow"' in line]
    assert len(lines) == len(txs)  # every transaction: the staging rule fires on each
    assert all(line["staging_rules"] == ["big_amount"] and line["staging_outcome"] == "block"
               and line["staging_rule_set"] == "r2" and line["rule_set"] == "r1" for line in lines)
    service.close()
