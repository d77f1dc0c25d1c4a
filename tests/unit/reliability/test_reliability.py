"""The pure parts of `txguard reliability`: poison corpus, double-count check, report (the ledger: tests/unit/local)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.enrich_fakes import unknown_counterparty
from txguard.contract import names
from txguard.contract.errors import InvalidEventError
from txguard.contract.models import TRANSACTION_ADAPTER
from txguard.enrichment.envelope import parse_transaction
from txguard.features.wallet import TxPoint, WalletState, apply
from txguard.local.topology import subscription_request
from txguard.ops.redrive import redrive_attributes
from txguard.publisher import make_stream
from txguard.reliability import poison, report, runner
from txguard.reliability.history_check import check, check_features, expected_states


@pytest.fixture(scope="module")
def stream() -> list:
    return make_stream(240, "fraud", seed=5, id_prefix="rel")


# poison -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(poison.KINDS))
def test_every_poison_kind_is_rejected_by_the_envelope(stream: list, kind: str) -> None:
    bad = poison.make_poison(stream[0], kind, 1)
    assert bad.corruption == kind and not bad.expected_valid and bad.transaction_id is None
    with pytest.raises(InvalidEventError):
        parse_transaction(bad.data)


def test_the_valid_originals_are_accepted(stream: list) -> None:
    for m in stream[:20]:
        parse_transaction(m.data)


def test_mix_replaces_about_the_fraction_with_every_kind_and_unique_bytes(stream: list) -> None:
    mixed = poison.mix(stream, 0.05, seed=3)
    bad = [m for m in mixed if not m.expected_valid]
    assert len(mixed) == len(stream)
    assert len(bad) == 12
    assert {m.corruption for m in bad} == set(poison.KINDS)
    assert len({m.data for m in bad}) == len(bad)  # matched on `invalid` by content
    assert poison.mix(stream, 0.0) == list(stream)
    with pytest.raises(ValueError):
        poison.mix(stream, 1.0)


# history check ------------------------------------------------------------------------------------
def _txs(stream: list) -> list:
    return [TRANSACTION_ADAPTER.validate_json(m.data) for m in stream[:60]]


def test_history_check_is_zero_for_the_sequential_replay_whatever_the_order(stream: list) -> None:
    txs = _txs(stream)
    stored = expected_states(reversed(txs))  # arrival order does not matter, applications do
    result = check(txs + txs[:5], lambda w: stored.get(w, WalletState()))  # duplicates in the input: distinct
    assert (result.double_counted, result.missing, result.mismatched_wallets) == (0, 0, 0)
    assert result.transactions == len(txs) and result.wallets == len(stored)


def test_history_check_counts_a_transaction_applied_twice_and_one_never_applied(stream: list) -> None:
    txs = _txs(stream)
    stored = expected_states(txs)
    twice, never = txs[0], txs[1]
    apply(stored[twice.wallet_id], TxPoint.of(twice))  # applied a second time
    stored_without = expected_states([t for t in txs if t.transaction_id != never.transaction_id])
    stored[never.wallet_id] = stored_without.get(never.wallet_id, WalletState())
    if never.wallet_id == twice.wallet_id:
        apply(stored[never.wallet_id], TxPoint.of(twice))
    result = check(txs, lambda w: stored.get(w, WalletState()))
    assert result.double_counted == 1
    assert result.missing == 1
    assert result.mismatched_wallets >= 1


# features per transaction --------------------------------------------------------------------------
def _online(txs: list, arrival: list) -> dict[str, dict]:
    """What the enrichment function stores when `txs` arrive in `arrival` order (SQLite store)."""
    import tempfile

    from txguard.enrichment.history.sqlite import SqliteHistoryStore

    with tempfile.TemporaryDirectory() as folder:
        store = SqliteHistoryStore(f"{folder}/h.sqlite3")
        for tx in arrival:
            store.enrich_once(tx, unknown_counterparty(tx))
        records = {tx.transaction_id: store.processed(tx.transaction_id) for tx in txs}
        store.close()
    return records


def test_features_in_order_equal_the_replay(stream: list) -> None:
    txs = _txs(stream)
    records = _online(txs, sorted(txs, key=lambda t: t.timestamp))
    result = check_features(txs, records.get)
    assert (result.compared, result.differing, result.unexplained, result.late) == (len(txs), 0, 0, 0)


def test_a_late_arrival_explains_the_differences_it_caused_and_nothing_else(stream: list) -> None:
    txs = sorted(_txs(stream), key=lambda t: t.timestamp)
    wallet = max({t.wallet_id for t in txs}, key=lambda w: sum(t.wallet_id == w for t in txs))
    mine = [t for t in txs if t.wallet_id == wallet]
    held = mine[0]  # its wallet's first transaction, delivered last (a redriven dead letter)
    records = _online(txs, [t for t in txs if t is not held] + [held])
    result = check_features(txs, records.get)
    assert result.late == 1 and result.differing >= 1 and result.unexplained == 0
    assert result.explained == result.differing
    # Without the late flag the same differences are unexplained skew.
    records[held.transaction_id] = {**records[held.transaction_id], "late": False}
    assert check_features(txs, records.get).unexplained == result.differing
    # ... unless the decision said it (the ledger's late ids).
    assert check_features(txs, records.get, {held.transaction_id}).unexplained == 0
    missing = check_features(txs, lambda tid: None if tid == held.transaction_id else records[tid])
    assert missing.unprocessed == 1


# report, verdict, hooks ------------------------------------------------------------------------------
RESULTS = {
    "duplicates": {"sent": 4, "transactions": 2, "decided": 2, "invalid": 0, "dead_lettered": 0, "redriven": 0,
                   "lost": 0, "double_counted": 0, "missing": 0, "drain_s": 1.0, "identical_decisions": True,
                   "decision_copies": 4, "failed_checks": [], "timeline": [(1.0, "x")]},
    "store_outage": {"skipped": "embedded", "failed_checks": []},
    "burst": {"sent": 10, "transactions": 10, "decided": 9, "invalid": 0, "dead_lettered": 0, "redriven": 0,
              "lost": 1, "double_counted": 0, "missing": 0, "drain_s": 3.0, "burst_rate": 250.0,
              "failed_checks": ["1 lost"]},
}


def test_last_line_is_one_json_object_per_scenario() -> None:
    line = report.last_line(RESULTS, {"mode": "emulators", "profile": "quick", "push_mode": "bridge"}, ok=False)
    doc = json.loads(line)
    assert "\n" not in line
    assert set(doc) == {"duplicates", "store_outage", "burst", "passed", "mode", "push_mode", "profile"}
    for key in ("sent", "decided", "invalid", "dead_lettered", "lost", "double_counted"):
        assert key in doc["duplicates"] and key in doc["burst"]
    assert doc["duplicates"]["ok"] is True and doc["burst"]["ok"] is False
    assert doc["burst"]["failed_checks"] == ["1 lost"]
    assert "timeline" not in doc["duplicates"]
    assert doc["passed"] is False


def test_verdict_needs_nothing_lost_nothing_double_counted_and_no_failed_check() -> None:
    assert not runner.passed(RESULTS)
    good = {k: v for k, v in RESULTS.items() if k != "burst"}
    assert runner.passed(good)
    assert not runner.passed({"x": {**RESULTS["duplicates"], "double_counted": 1}})
    assert not runner.passed({"x": {**RESULTS["duplicates"], "failed_checks": ["refused: False"]}})


def test_markdown_has_the_command_the_table_and_the_last_line() -> None:
    text = report.markdown(RESULTS, {"mode": "emulators", "profile": "full"}, False,
                           "txguard reliability --write-doc docs/reliability.md", "## Notes\nhello")
    assert "txguard reliability --write-doc docs/reliability.md" in text
    assert "| duplicates | 4 | 2 | 2 |" in text
    assert "FAILED" in text and "## Notes" in text
    assert report.last_line(RESULTS, {"mode": "emulators", "profile": "full"}, False) in text


def test_redrive_keeps_the_producer_attributes_only() -> None:
    attrs = {names.ATTR_PUBLISHED_AT: "1", names.ATTR_TRANSACTION_ID: "t",
             "CloudPubSubDeadLetterSourceDeliveryCount": "10", "CloudPubSubDeadLetterSourceSubscription": "s"}
    assert redrive_attributes(attrs) == {names.ATTR_PUBLISHED_AT: "1", names.ATTR_TRANSACTION_ID: "t"}


def test_push_subscription_without_retry_policy_on_request_only() -> None:
    spec = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
    endpoints = {names.ENRICH_FUNCTION: "http://127.0.0.1:1/"}
    assert "retry_policy" in subscription_request("p", spec, endpoints, emulator=True)
    without = subscription_request("p", spec, endpoints, emulator=True, retry_policy=False)
    assert "retry_policy" not in without
    assert without["dead_letter_policy"]["max_delivery_attempts"] == spec.max_delivery_attempts


def test_the_command_lists_the_scenarios_it_runs() -> None:
    from txguard.reliability import SCENARIO_NAMES
    from txguard.reliability.registry import SCENARIOS

    assert tuple(SCENARIOS) == SCENARIO_NAMES


def test_profiles_keep_the_issue_figures() -> None:
    from txguard.reliability.context import FULL

    assert FULL.scoring_outage_s == 20 and FULL.store_outage_s == 10
    assert FULL.burst_factor == 10 and FULL.burst_s == 10 and FULL.poison_fraction == 0.05
    assert replace(FULL, name="x").name == "x"
