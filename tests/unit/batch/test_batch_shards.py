"""The replay split by family over several shards equals the single-process replay exactly.

Input: a simulation with compromised counterparties and mule collections (scenarios spanning many
wallets) and delayed labels (each fraud row's `label_time`, when its first fraud label became
known: analyst verdicts within hours, chargebacks days later), over two files so that timestamp
ties are broken by (file, line). The Beam job runs with 4 shards per family in this process and
with 3 shards on two worker processes; features and decisions must equal training's replay of the
same rows (`from_file`, the columnar twin; `feature_rows`, the reference) and score-file's lines.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.scoring_fixtures import publish_tiny
from txguard.batch.jobs import JobSpec, JobState, run_job
from txguard.batch.score_file import score_file
from txguard.features.timeline import row_label_event
from txguard.features.wallet import FEATURE_NAMES
from txguard.scoring.loading import open_scorer
from txguard.simulator.core import Simulation
from txguard.training.dataset import feature_rows, first_known, from_file


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("batch-shards")
    sim = Simulation(days=20, wallets=300, seed=4)
    known = first_known(sim.label_events())
    records, lines = [], []
    for r in sim:
        row = r.to_row()
        label_time = known.get(r.tx.transaction_id) if r.is_fraud else None
        if label_time is not None:
            row["label_time"] = datetime.fromtimestamp(label_time, UTC).isoformat()
        records.append((r, label_time))
        lines.append(json.dumps(row) + "\n")
    scenarios = {r.scenario for r, _ in records}
    assert {"compromised_counterparty", "mule_collection"} <= scenarios, scenarios
    (root / "in").mkdir()
    for k in range(2):
        (root / "in" / f"part-{k}.jsonl").write_text("".join(lines[k::2]))
    merged = root / "merged.jsonl"  # the single-process order: file 0 then file 1
    merged.write_text("".join(lines[0::2] + lines[1::2]))
    registry = root / "registry"
    publish_tiny(registry)
    return {"root": root, "merged": merged, "records": records[0::2] + records[1::2],
            "uri": f"{registry}@production", "scorer": open_scorer(f"{registry}@production")}


def _run(world: dict, shards: int, workers: int) -> Path:
    out = world["root"] / f"out-{shards}x{workers}"
    status = run_job(JobSpec(input=str(world["root"] / "in" / "part-*.jsonl"), output=str(out),
                             model_uri=world["uri"], features=True, shards=shards), workers=workers)
    assert status.state is JobState.COMPLETED, status.error
    n = len(world["records"])
    assert status.counts == {"read": n, "invalid": 0, "featurised": n, "decided": n, "sampled": 0}
    return out


def _features(out: Path) -> dict[str, list[float]]:
    table = pq.read_table(sorted(out.glob("features-*.parquet")))
    x = np.column_stack([table.column(n).to_numpy() for n in FEATURE_NAMES])
    return dict(zip(table.column("transaction_id").to_pylist(), x.tolist(), strict=True))


def _assert_equal(got: dict[str, list[float]], want: dict[str, list[float]], what: str) -> None:
    assert len(got) == len(want)
    differ = [(t, [n for n, a, b in zip(FEATURE_NAMES, got[t], want[t], strict=True) if a != b]) for t in want
              if got[t] != want[t]]
    assert not differ, f"{len(differ)} transactions differ from {what}, e.g. {differ[0]}"


@pytest.mark.parametrize(("shards", "workers"), [(4, 1), (3, 2)])
def test_sharded_replay_equals_the_single_process_replay(world: dict, shards: int, workers: int, tmp_path: Path) -> None:
    out = _run(world, shards, workers)
    beam = _features(out)

    ordered = sorted(world["records"], key=lambda rec: rec[0].tx.timestamp)  # stable: ties in file order
    training = from_file(world["merged"])  # the columnar twin, labels from label_time, rows in that order
    twin = dict(zip((r.tx.transaction_id for r, _ in ordered), training.X.tolist(), strict=True))
    _assert_equal(beam, twin, "training's replay (columnar twin)")

    labels = [row_label_event(r.tx, t) for r, t in ordered if t is not None]
    reference = {tx.transaction_id: list(row) for row, tx, *_ in
                 feature_rows(((r.tx, r.is_fraud, float("nan"), r.scenario) for r, _ in ordered), labels)}
    _assert_equal(beam, reference, "the reference replay")

    # The labels did reach every family (counterparty, device, the wallet's own), delayed.
    x = np.array(list(beam.values()))
    for name in ("cp_fraud_30d", "cp_fraud_wallets_30d", "device_fraud_30d", "wallet_fraud_30d", "cp_new_wallets_24h"):
        assert (x[:, FEATURE_NAMES.index(name)] > 0).sum() >= 10, name

    report = score_file(world["scorer"], str(world["merged"]), str(tmp_path / "decisions.jsonl"))
    assert report.transactions == len(world["records"])
    single = sorted((tmp_path / "decisions.jsonl").read_text().splitlines())
    sharded = sorted(line for p in sorted(out.glob("decisions-*.jsonl")) for line in p.read_text().splitlines())
    assert sharded == single


def test_each_counterparty_feature_reads_one_family_view() -> None:
    """The split's premise: a feature of `counterparty_values` depends on its family's view only
    (the others empty give the same value), and the families cover every feature once."""
    from txguard.batch.families import FAMILIES, FAMILY_COLUMNS
    from txguard.features.counterparty import (
        CounterpartyBook,
        EntityKeys,
        Snapshot,
        fraud_increments,
        increments_at,
    )
    from txguard.features.counterparty_windows import counterparty_values
    from txguard.features.wallet import COUNTERPARTY_FEATURES, DAY

    covered = np.sort(np.concatenate([FAMILY_COLUMNS[k] for k in FAMILIES]))
    assert covered.tolist() == list(range(len(COUNTERPARTY_FEATURES)))
    keys = EntityKeys.of("w1", "c1", "d1")
    paying_w1 = EntityKeys.of("w2", "w1", None)  # w1 is paid too: its inflow
    c1_paying = EntityKeys.of("c1", "m9", None)  # c1 pays too: its own labels, the payee view of w1's rows
    book = CounterpartyBook()
    rng = np.random.default_rng(3)
    t0 = 400 * DAY
    for t in sorted(t0 + rng.uniform(0, 20 * DAY, 300)):
        draw = rng.random()
        on = keys if draw < 0.6 else paying_w1 if draw < 0.8 else c1_paying
        book.add(increments_at(on, float(t), float(rng.uniform(1, 500)), bool(rng.random() < 0.3),
                               bool(rng.random() < 0.3)))
        if rng.random() < 0.05:
            book.add(fraud_increments(on.all(), float(t) + 3600, +1))
    t = t0 + 20.5 * DAY
    full = np.array(counterparty_values(book.snapshot_at(keys, t), 42.0, t))
    assert (full != np.array(counterparty_values(Snapshot(), 42.0, t))).sum() >= 15  # the views say something
    fields = {"c": "counterparty", "d": "device", "w": "wallet", "i": "inflow", "p": "payee"}
    for kind in FAMILIES:
        alone = Snapshot(**{fields[kind.value]: book.view(getattr(keys, fields[kind.value]), t)})
        values = np.array(counterparty_values(alone, 42.0, t))
        assert values[FAMILY_COLUMNS[kind]].tolist() == full[FAMILY_COLUMNS[kind]].tolist(), kind
    assert full[COUNTERPARTY_FEATURES.index("cp_wallet_fraud_30d")] > 0  # the payee view said something
