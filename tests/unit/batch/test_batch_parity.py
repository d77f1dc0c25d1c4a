"""Exactness of the Beam batch job: on >= 10k simulated transactions its features and decisions equal
the single-process replay's (training's `feature_rows`, `score-file`) and the online path's (the
enrichment pipeline in process, a real SQLite history store, the scoring core in process), exactly.

The input is split over two files, alternating lines, so timestamp ties are broken by (file, line)
as the single-process replay of the files read one after the other breaks them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.enrich_fakes import FakeOutbox, event_data, stored_row
from tests.scoring_fixtures import publish_tiny
from txguard.batch.jobs import JobSpec, JobState, run_job
from txguard.batch.score_file import score_file
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.history.sqlite import SqliteHistoryStore
from txguard.enrichment.pipeline import DeliveryStatus, Enricher
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex
from txguard.features.wallet import FEATURE_NAMES
from txguard.scoring.loading import open_scorer
from txguard.simulator.core import simulate
from txguard.training.dataset import feature_rows, from_feature_table


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("batch-parity")
    labelled = list(simulate(days=10, wallets=500, seed=11))
    assert len(labelled) >= 10_000
    files = [root / "in" / "part-0.jsonl", root / "in" / "part-1.jsonl"]
    files[0].parent.mkdir()
    for k, path in enumerate(files):
        path.write_text("".join(r.to_json() + "\n" for r in labelled[k::2]))
    # The single-process order: file 0 then file 1, stably sorted by time.
    in_file_order = labelled[0::2] + labelled[1::2]
    ordered = sorted(in_file_order, key=lambda r: r.tx.timestamp)
    registry = root / "registry"
    publish_tiny(registry)
    uri = f"{registry}@production"
    status = run_job(JobSpec(input=str(root / "in" / "part-*.jsonl"), output=str(root / "out"), model_uri=uri,
                             features=True, shards=16), workers=1)
    assert status.state is JobState.COMPLETED, status.error
    return {"root": root, "ordered": ordered, "uri": uri, "status": status,
            "scorer": open_scorer(uri)}


def _beam_features(root: Path) -> dict[str, list[float]]:
    table = pq.read_table(sorted((root / "out").glob("features-*.parquet")))
    x = np.column_stack([table.column(n).to_numpy() for n in FEATURE_NAMES])
    return dict(zip(table.column("transaction_id").to_pylist(), x.tolist(), strict=True))


def _decisions(paths: list[Path]) -> dict[str, dict]:
    out = {}
    for path in paths:
        for line in path.read_text().splitlines():
            d = json.loads(line)
            out[d["transaction_id"]] = d
    return out


def test_counts_in_the_status(world: dict) -> None:
    n = len(world["ordered"])
    assert world["status"].counts == {"read": n, "invalid": 0, "featurised": n, "decided": n, "sampled": 0}


def test_features_equal_the_single_process_replay_and_the_online_path(world: dict, tmp_path: Path) -> None:
    ordered = world["ordered"]
    beam = _beam_features(world["root"])
    replayed = {tx.transaction_id: list(row) for row, tx, *_ in
                feature_rows((r.tx, r.is_fraud, float("nan"), r.scenario) for r in ordered)}
    assert len(beam) == len(replayed) == len(ordered)
    differ = [t for t in replayed if beam[t] != replayed[t]]
    assert not differ, f"{len(differ)} transactions differ from the replay, e.g. {differ[0]}"

    store, outbox = SqliteHistoryStore(tmp_path / "history.sqlite3"), FakeOutbox()
    counterparties = SqliteCounterpartyStore(tmp_path / "history.sqlite3")
    enricher = Enricher(store, world["scorer"], outbox, counterparties,
                        SqliteTransactionIndex(tmp_path / "history.sqlite3"))
    try:
        for i, r in enumerate(ordered):
            assert enricher.handle(event_data(r.tx, message_id=str(i))).status is DeliveryStatus.DECIDED
        online = {r.tx.transaction_id: stored_row(r.tx, store.processed(r.tx.transaction_id)) for r in ordered}
    finally:
        store.close()
        counterparties.close()
    differ = [t for t in online if beam[t] != online[t]]
    assert not differ, f"{len(differ)} transactions differ from the online path, e.g. {differ[0]}"

    # Decisions: the online path scores one row at a time; the batch job scores matrices.
    beam_decisions = _decisions(sorted((world["root"] / "out").glob("decisions-*.jsonl")))
    for published in outbox.decided():
        got = beam_decisions[published.transaction_id]
        assert (got["score"], got["outcome"], got["reasons"], got["model_version"]) == (
            published.score, published.outcome.value, published.reasons, published.model_version)


def test_decisions_equal_score_file_byte_for_byte(world: dict, tmp_path: Path) -> None:
    """score-file on the same raw transactions (one process, replay) writes the very same lines."""
    root = world["root"]
    merged = tmp_path / "all.jsonl"
    merged.write_text((root / "in" / "part-0.jsonl").read_text() + (root / "in" / "part-1.jsonl").read_text())
    report = score_file(world["scorer"], str(merged), str(tmp_path / "decisions.jsonl"))
    assert report.kind == "transactions" and report.transactions == len(world["ordered"])
    single = sorted((tmp_path / "decisions.jsonl").read_text().splitlines())
    beam = sorted(line for p in sorted((root / "out").glob("decisions-*.jsonl")) for line in p.read_text().splitlines())
    assert single == beam


def test_training_takes_the_feature_table_instead_of_replaying(world: dict) -> None:
    """Read a row group at a time into one float32 matrix: the float32 of the replay's rows, what
    training casts them to and ONNX serves (the table's float64 values are compared above)."""
    ordered = world["ordered"]
    table = from_feature_table(str(world["root"] / "out"))
    rows = [list(row) for row, *_ in feature_rows((r.tx, r.is_fraud, float("nan"), r.scenario) for r in ordered)]
    assert table.X.dtype == np.float32 and table.weight is None
    assert np.array_equal(table.X, np.asarray(rows, dtype=np.float64).astype(np.float32))
    assert table.y.tolist() == [r.is_fraud for r in ordered]
    assert table.scenarios == [r.scenario for r in ordered]
    assert table.ts.tolist() == [r.tx.timestamp.timestamp() for r in ordered]


def test_label_times_reach_the_counterparty_features_as_in_training(tmp_path: Path) -> None:
    """A fraud row's label_time is a label known then, in the batch replay as in `from_file`."""
    from datetime import UTC, datetime

    from txguard.batch.featurize import feature_matrix
    from txguard.batch.readers import read_chunks, validate_chunk
    from txguard.batch.rows import concat
    from txguard.simulator.core import Simulation
    from txguard.training.dataset import first_known, from_file

    sim = Simulation(days=20, wallets=300, seed=4)
    known = first_known(sim.label_events())
    lines = []
    for r in sim:
        row = r.to_row()
        if r.is_fraud and r.tx.transaction_id in known:
            row["label_time"] = datetime.fromtimestamp(known[r.tx.transaction_id], UTC).isoformat()
        lines.append(json.dumps(row))
    src = tmp_path / "labelled.jsonl"
    src.write_text("\n".join(lines) + "\n")
    tables = [validate_chunk(chunk, "transactions")[0] for chunk in read_chunks(str(src), 0)]
    x = feature_matrix(concat(tables, "transactions"))
    training = from_file(src)
    assert np.array_equal(x, training.X)
    assert (x[:, FEATURE_NAMES.index("cp_fraud_30d")] > 0).sum() >= 10  # the labels did count
