"""`txguard score-file` core: JSONL and CSV in, decisions out in order, the first bad row named."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.scoring_fixtures import (
    enriched_transactions,
    publish_disagreeing,
    publish_tiny,
    tiny_metadata,
    tiny_model,
)
from txguard.batch.score_file import score_file
from txguard.cli.main import main as cli
from txguard.contract.errors import DataFileError
from txguard.features.wallet import COUNTERPARTY_FEATURES, HISTORY_FEATURES
from txguard.scoring.runtime import ModelRuntime
from txguard.scoring.scorer import Scorer


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(ModelRuntime(tiny_model()[1], tiny_metadata()))


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_scores_every_row_in_order_like_the_batch_path(scorer: Scorer, tmp_path: Path) -> None:
    txs = enriched_transactions()
    src = write_jsonl(tmp_path / "in.jsonl", [tx.model_dump_json() for tx in txs[:100]] + [""]
                      + [tx.model_dump_json() for tx in txs[100:]])
    report = score_file(scorer, str(src), str(tmp_path / "out" / "decisions.jsonl"), chunk=64)
    out = [json.loads(line) for line in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines()]
    assert report.transactions == len(txs) == len(out)
    expected = scorer.score_batch(txs)
    assert [d["transaction_id"] for d in out] == [tx.transaction_id for tx in txs]
    assert [(d["score"], d["outcome"], d["reasons"]) for d in out] == [
        (e.score, e.outcome.value, e.reasons) for e in expected]
    assert sum(report.decisions.values()) == len(txs)


def test_csv_with_flat_feature_columns(scorer: Scorer, tmp_path: Path) -> None:
    txs = enriched_transactions()[:50]
    src = tmp_path / "in.csv"
    with src.open("w", newline="") as fh:
        base = [k for k in txs[0].model_dump() if k not in ("features", "counterparty")]
        writer = csv.DictWriter(fh, fieldnames=base + [f"features.{n}" for n in HISTORY_FEATURES[:5]]
                                + list(HISTORY_FEATURES[5:]) + [f"counterparty.{n}" for n in COUNTERPARTY_FEATURES[:3]]
                                + list(COUNTERPARTY_FEATURES[3:]))
        writer.writeheader()
        for tx in txs:
            row = tx.model_dump(mode="json")
            feats, cp = row.pop("features"), row.pop("counterparty")
            row["device_id"] = row["device_id"] or ""
            row.update({f"features.{n}": feats[n] for n in HISTORY_FEATURES[:5]})
            row.update({n: feats[n] for n in HISTORY_FEATURES[5:]})
            row.update({f"counterparty.{n}": cp[n] for n in COUNTERPARTY_FEATURES[:3]})
            row.update({n: cp[n] for n in COUNTERPARTY_FEATURES[3:]})
            writer.writerow(row)
    score_file(scorer, str(src), str(tmp_path / "out.jsonl"))
    got = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [g["score"] for g in got] == [d.score for d in scorer.score_batch(txs)]


def test_the_first_bad_row_is_named_by_line_and_field(scorer: Scorer, tmp_path: Path) -> None:
    lines = [tx.model_dump_json() for tx in enriched_transactions()[:30]]
    bad = json.loads(lines[17])
    bad["features"]["tx_count_1h"] = -1
    lines[17] = json.dumps(bad)
    lines[25] = "{not json"
    src = write_jsonl(tmp_path / "in.jsonl", lines)
    with pytest.raises(DataFileError, match=r"line 18: field 'features.tx_count_1h'"):
        score_file(scorer, str(src), str(tmp_path / "out.jsonl"), chunk=10)


def test_a_bad_csv_row_is_named(scorer: Scorer, tmp_path: Path) -> None:
    tx = enriched_transactions()[0].model_dump(mode="json")
    feats, cp = tx.pop("features"), tx.pop("counterparty")
    src = tmp_path / "in.csv"
    with src.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*tx, *feats, *cp])
        writer.writeheader()
        writer.writerow({**tx, **feats, **cp, "device_id": ""})
        writer.writerow({**tx, **feats, **cp, "device_id": "", "amount": "lots"})
    with pytest.raises(DataFileError, match=r"line 3: field 'amount'"):
        score_file(scorer, str(src), str(tmp_path / "out.jsonl"))


def test_cli_prints_a_throughput_line_and_a_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish_tiny(tmp_path / "registry")
    src = write_jsonl(tmp_path / "in.jsonl", [tx.model_dump_json() for tx in enriched_transactions()])
    code = cli(["score-file", str(src), str(tmp_path / "out.jsonl"), "--model-uri",
                f"{tmp_path / 'registry'}@production"])
    assert code == 0
    out = capsys.readouterr()
    report = json.loads(out.out.strip().splitlines()[-1])
    assert report["transactions"] == len(enriched_transactions()) and report["tx_per_s"] > 0
    assert "tx/s" in out.err

    bad = write_jsonl(tmp_path / "bad.jsonl", ['{"transaction_id": "x"}'])
    assert cli(["score-file", str(bad), str(tmp_path / "o2.jsonl"), "--model-uri",
                f"{tmp_path / 'registry'}@production"]) == 1
    assert "line 1" in capsys.readouterr().err


def test_cli_refuses_a_model_whose_onnx_disagrees_with_its_metadata(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish_disagreeing(tmp_path / "registry")
    src = write_jsonl(tmp_path / "in.jsonl", [tx.model_dump_json() for tx in enriched_transactions()[:5]])
    code = cli(["score-file", str(src), str(tmp_path / "out.jsonl"), "--model-uri",
                f"{tmp_path / 'registry'}@production"])
    assert code == 4 and not (tmp_path / "out.jsonl").exists()  # setup: the registry's model is refused
    assert "recorded at training" in capsys.readouterr().err.replace("\n", " ")


def test_raw_transactions_in_parquet_are_replayed_then_scored(scorer: Scorer, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from txguard.simulator.core import simulate

    labelled = list(simulate(days=2, wallets=60, seed=3))  # the transactions of enriched_transactions()
    pq.write_table(pa.Table.from_pylist([r.to_row() for r in labelled]), tmp_path / "raw.parquet")
    report = score_file(scorer, str(tmp_path / "raw.parquet"), str(tmp_path / "out.jsonl"), chunk=500)
    assert report.kind == "transactions" and report.transactions == len(labelled)
    expected = scorer.score_batch(enriched_transactions())
    got = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(g["transaction_id"], g["score"], g["outcome"], g["reasons"]) for g in got] == [
        (e.transaction_id, e.score, e.outcome.value, e.reasons) for e in expected]


def test_cli_input_kind_forces_the_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish_tiny(tmp_path / "registry")
    src = write_jsonl(tmp_path / "in.jsonl", [tx.model_dump_json() for tx in enriched_transactions()[:20]])
    code = cli(["score-file", str(src), str(tmp_path / "out.jsonl"), "--model-uri",
                f"{tmp_path / 'registry'}@production", "--input-kind", "transactions"])
    assert code == 1  # an EnrichedTransaction has a field a Transaction forbids
    assert "line 1: field 'features': Extra inputs are not permitted" in capsys.readouterr().err
