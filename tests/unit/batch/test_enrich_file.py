"""`txguard enrich-file`: plain Transactions -> point-in-time EnrichedTransactions -> `score-file`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scoring_fixtures import publish_tiny
from txguard.batch.enrich_file import enrich_file
from txguard.cli.main import main as cli
from txguard.contract.errors import DataFileError
from txguard.contract.models import ENRICHED_ADAPTER
from txguard.features.counterparty import CounterpartyBook, marks, transaction_increments
from txguard.features.timeline import enrich
from txguard.features.wallet import TxPoint, WalletState, apply
from txguard.simulator.core import quick_stream


def test_features_are_those_the_online_path_computes_in_time_order(tmp_path: Path) -> None:
    items = list(quick_stream(400, seed=9))
    src = tmp_path / "tx.jsonl"
    # Shuffled on disk, labels included: the replay sorts by time and drops the labels.
    src.write_text("".join(t.to_json() + "\n" for t in reversed(items)))
    counts = enrich_file(src, tmp_path / "enriched.jsonl")
    out = [ENRICHED_ADAPTER.validate_json(line) for line in (tmp_path / "enriched.jsonl").read_bytes().splitlines()]
    assert counts == {"transactions": 400, "wallets": len({t.tx.wallet_id for t in items}), "labels": 0}
    states: dict[str, WalletState] = {}
    book = CounterpartyBook()
    expected = {}
    for item in sorted(items, key=lambda t: t.tx.timestamp):  # what enrichment would compute, one by one
        state = states.setdefault(item.tx.wallet_id, WalletState())
        got = enrich(item.tx, state, book.snapshot(item.tx))
        expected[item.tx.transaction_id] = (got.features, got.counterparty)
        point = TxPoint.of(item.tx)
        book.add(transaction_increments(item.tx, *marks(state, point)))
        apply(state, point)
    assert {e.transaction_id: (e.features, e.counterparty) for e in out} == expected
    assert [e.timestamp for e in out] == sorted(e.timestamp for e in out)


def test_a_bad_row_is_named_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = list(quick_stream(3, seed=2))
    src = tmp_path / "tx.jsonl"
    src.write_text(items[0].to_json() + "\n" + json.dumps({"transaction_id": "x", "wallet_id": "w"}) + "\n")
    with pytest.raises(DataFileError, match=r"tx.jsonl: line 2: field 'counterparty_id': Field required"):
        enrich_file(src, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
    assert cli(["enrich-file", str(src), str(tmp_path / "out.jsonl")]) == 1  # input (txguard.cli.errors.Exit)
    assert capsys.readouterr().err.startswith(f"error: {src}: line 2: field")


def test_the_documented_chain_simulate_enrich_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish_tiny(tmp_path / "registry")
    uri = f"{tmp_path / 'registry'}@production"
    raw, enriched, decisions = (str(tmp_path / n) for n in ("tx.csv", "enriched.jsonl", "decisions.jsonl"))
    assert cli(["simulate", "--days", "2", "--wallets", "40", "--out", raw]) == 0
    capsys.readouterr()
    assert cli(["enrich-file", raw, enriched]) == 0
    n = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["transactions"]
    assert cli(["score-file", "--model-uri", uri, enriched, decisions]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["transactions"] == n > 0
    assert len(Path(decisions).read_text().splitlines()) == n
    # score-file also takes the plain file: it replays it itself, to the same decisions.
    direct = str(tmp_path / "direct.jsonl")
    assert cli(["score-file", "--model-uri", uri, raw, direct]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["kind"] == "transactions"
    assert sorted(Path(direct).read_text().splitlines()) == sorted(Path(decisions).read_text().splitlines())
    # Forced to read it as enriched, it fails and says why.
    assert cli(["score-file", "--model-uri", uri, "--input-kind", "enriched", raw, direct]) == 1
    assert "drop --input-kind enriched to replay their history" in capsys.readouterr().err.replace("\n", " ")
