"""score-file and batch decisions with a rule set: byte for byte what serving's Decision writes, for
enriched JSONL and for plain Transactions replayed first; the CLI applies the registry's production set."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scoring_fixtures import enriched_transactions, publish_tiny
from txguard.batch.score_file import score_file
from txguard.cli.main import main as cli
from txguard.contract.models import DECISION_ADAPTER, RuleSetSpec
from txguard.registry.rulesets import RuleSetRegistry
from txguard.registry.store import LocalBlobStore
from txguard.rules.engine import RuleSet
from txguard.scoring.loading import open_scorer

SPEC = RuleSetSpec(rules=[
    {"name": "transfers", "condition": "type == 'transfer' && amount > 20", "outcome": "review", "reason": "t"},
    {"name": "no_device_big", "condition": "device_id == '' && amount > 50", "outcome": "block", "reason": "d"},
    {"name": "home", "condition": "country in ['FR', 'DE'] && score < 0.5", "outcome": "allow", "reason": "h"},
])


def test_file_decisions_equal_serving_decisions(tmp_path: Path) -> None:
    publish_tiny(tmp_path / "reg")
    scorer = open_scorer(f"{tmp_path / 'reg'}@production")
    rules = RuleSet(SPEC, version="r9")
    txs = enriched_transactions()
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(tx.model_dump_json() for tx in txs) + "\n")
    out = tmp_path / "out.jsonl"
    report = score_file(scorer, str(src), str(out), chunk=50, rules=rules)
    assert report.transactions == len(txs)
    lines = out.read_bytes().splitlines()
    fired = 0
    for tx, line in zip(txs, lines, strict=True):
        expected = scorer.score(tx, rules=rules).model_copy(update={"timings": {}})
        assert line == DECISION_ADAPTER.dump_json(expected), tx.transaction_id
        fired += bool(expected.rules)
    assert 0 < fired < len(txs)


def test_the_cli_applies_the_production_rule_set(tmp_path: Path, capsys: object) -> None:
    publish_tiny(tmp_path / "reg")
    store = RuleSetRegistry(LocalBlobStore(str(tmp_path / "reg")))
    store.promote(store.publish(SPEC, saved_by="t", reason="t").version)
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(tx.model_dump_json() for tx in enriched_transactions()[:80]) + "\n")
    assert cli(["score-file", str(src), str(tmp_path / "a.jsonl"), "--model-uri", f"{tmp_path / 'reg'}@production"]) == 0
    assert cli(["score-file", str(src), str(tmp_path / "b.jsonl"), "--model-uri", f"{tmp_path / 'reg'}@production",
                "--no-rules"]) == 0
    with_rules = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    without = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert {d["rule_set"] for d in with_rules} == {"r1"} and {d["rule_set"] for d in without} == {None}
    assert any(d["rules"] for d in with_rules) and not any(d["rules"] for d in without)
