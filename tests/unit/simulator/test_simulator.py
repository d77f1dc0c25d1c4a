"""Simulator: deterministic, time-ordered, every scenario present and labelled, contract-valid."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from txguard.contract.models import TRANSACTION_ADAPTER, Transaction
from txguard.features.wallet import SMALL_AMOUNT
from txguard.simulator.core import LEGIT, SCENARIOS, quick_stream, simulate


def rows(**kw: object) -> list[str]:
    return [r.to_json() for r in simulate(**kw)]


def test_same_seed_same_output_different_seed_different() -> None:
    a = rows(days=5, wallets=150, seed=7)
    assert a == rows(days=5, wallets=150, seed=7)
    assert a != rows(days=5, wallets=150, seed=8)


def test_every_scenario_present_labelled_and_contract_valid() -> None:
    data = list(simulate(days=20, wallets=800, seed=3))
    times = [r.tx.timestamp for r in data]
    assert times == sorted(times)
    assert len({r.tx.transaction_id for r in data}) == len(data)
    counts = Counter(r.scenario for r in data)
    assert set(SCENARIOS) <= set(counts)
    for r in data:
        assert (r.is_fraud == 1) == (r.scenario != LEGIT)
    rate = sum(r.is_fraud for r in data) / len(data)
    assert 0.003 < rate < 0.03, rate
    # Re-validate through the public contract from the JSONL form a publisher would send.
    for r in data[:: max(1, len(data) // 3000)]:
        row = json.loads(r.to_json())
        assert row["is_fraud"] == r.is_fraud and row["scenario"] == r.scenario
        del row["is_fraud"], row["scenario"]
        assert TRANSACTION_ADAPTER.validate_python(row) == r.tx
        assert r.to_row() == {**r.tx.model_dump(mode="json"), "is_fraud": r.is_fraud, "scenario": r.scenario}


def test_scenarios_have_their_signature() -> None:
    data = [r for r in simulate(days=20, wallets=800, seed=3) if r.is_fraud]
    card = [r.tx for r in data if r.scenario == "card_testing"]
    assert sum(t.amount < SMALL_AMOUNT for t in card) / len(card) > 0.8
    mule = [r.tx for r in data if r.scenario == "mule"]
    assert any(t.type == "top_up" for t in mule) and any(t.type == "transfer" for t in mule)
    ato = [r.tx for r in data if r.scenario == "account_takeover"]
    assert all(t.type == "transfer" for t in ato)


def test_drift_shifts_amounts_and_channels() -> None:
    base = [r.tx for r in simulate(days=5, wallets=300, seed=1) if not r.is_fraud]
    drifted = [r.tx for r in simulate(days=5, wallets=300, seed=1, drift=1.0) if not r.is_fraud]

    def median(xs: list[float]) -> float:
        return sorted(xs)[len(xs) // 2]

    assert median([t.amount for t in drifted]) > 1.3 * median([t.amount for t in base])
    web = lambda txs: sum(t.channel == "web" for t in txs) / len(txs)  # noqa: E731
    assert web(drifted) > web(base)


def test_quick_stream_is_bounded_and_recent() -> None:
    out = list(quick_stream(200, seed=5, id_prefix="pub1"))
    assert len(out) == 200
    assert all(isinstance(r.tx, Transaction) and r.tx.transaction_id.startswith("pub1-") for r in out)
    assert max(r.tx.timestamp for r in out) <= datetime.now(UTC)


def test_cli_writes_jsonl(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from txguard.cli.main import main

    out = tmp_path / "sim.jsonl"
    assert main(["simulate", "--days", "3", "--wallets", "100", "--seed", "2", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    lines = out.read_text().splitlines()
    assert summary["transactions"] == len(lines) > 0
    assert lines == rows(days=3, wallets=100, seed=2)


def test_cli_writes_csv_for_a_csv_name_that_replays_and_trains_alike(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import csv

    from txguard.cli.main import main
    from txguard.publisher import read_file

    out = tmp_path / "sim.csv"
    assert main(["simulate", "--days", "3", "--wallets", "100", "--seed", "2", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["format"] == "csv"
    with out.open(newline="") as fh:
        table = list(csv.DictReader(fh))
    jsonl = [json.loads(line) for line in rows(days=3, wallets=100, seed=2)]
    assert len(table) == len(jsonl) == summary["transactions"]
    assert [r["transaction_id"] for r in table] == [r["transaction_id"] for r in jsonl]
    replayed = read_file(out)
    assert all(m.expected_valid for m in replayed)
    assert [m.is_fraud for m in replayed] == [r["is_fraud"] for r in jsonl]


def test_counterparty_scenarios_span_many_wallets_and_labels_come_late() -> None:
    from collections import defaultdict
    from datetime import timedelta

    from txguard.simulator.core import FRAUD_SCENARIOS, Simulation

    sim = Simulation(days=20, wallets=800, seed=3)
    data = list(sim)
    assert set(FRAUD_SCENARIOS) <= {r.scenario for r in data}
    victims: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in data:
        if r.scenario in ("compromised_counterparty", "mule_collection"):
            victims[(r.scenario, r.tx.counterparty_id)].add(r.tx.wallet_id)
    sizes = sorted(len(w) for w in victims.values())  # (an incident near the end is cut by it)
    assert sizes[len(sizes) // 2] >= 10, f"an incident defrauds many wallets at one counterparty: {sizes}"
    labels = list(sim.label_events())
    by_tx = {r.tx.transaction_id: r for r in data}
    delays = {lb.kind.value: [] for lb in labels}
    for lb in labels:
        delays[lb.kind.value].append(lb.known_at - by_tx[lb.transaction_id].tx.timestamp)
    assert max(delays["analyst"]) <= timedelta(hours=12)
    assert min(delays["chargeback"]) >= timedelta(days=2)
    assert sorted(delays["chargeback"])[len(delays["chargeback"]) // 2] > timedelta(days=4)
    fraud_ids = {r.tx.transaction_id for r in data if r.is_fraud}
    disputed = [lb for lb in labels if lb.transaction_id not in fraud_ids]
    assert disputed and all(lb.kind.value in ("chargeback", "reversal") for lb in disputed)
    assert {lb.reverses for lb in labels if lb.kind.value == "reversal"} <= {lb.label_id for lb in disputed}
    assert [lb.known_at for lb in labels] == sorted(lb.known_at for lb in labels)



def test_a_demo_label_names_its_transaction_time_as_the_transaction_index_keeps_it() -> None:
    """The label function refuses a label whose transaction_time is not the indexed one (floored to
    the millisecond); the demo stream ends now, with microseconds a rounded label time once exceeded."""
    from datetime import UTC, datetime

    from txguard.contract.models import TRANSACTION_ADAPTER
    from txguard.enrichment.transaction_index.protocol import epoch_ms
    from txguard.local.label_feed import demo_labels
    from txguard.publisher.sources import labelled_messages, simulated

    end = datetime(2026, 12, 6, 21, 43, 1, 403673, tzinfo=UTC)  # now(), past the half millisecond
    messages = labelled_messages(simulated(400, "fraud", seed=11, id_prefix="s11", end=end))
    by_id = {m.transaction_id: TRANSACTION_ADAPTER.validate_json(m.data) for m in messages if m.expected_valid}
    assert all(tx.timestamp.microsecond % 1000 == 673 for tx in by_id.values())  # the case that once failed
    plan = demo_labels(messages, 11, 0.5)
    assert plan
    now = datetime.now(UTC)
    for _delay, draft in plan:
        label = draft.event(known_at=now)
        assert epoch_ms(label.transaction_time) == epoch_ms(by_id[label.transaction_id].timestamp)
