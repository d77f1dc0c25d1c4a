"""The training sample of `txguard batch run --sample`: drawn after the full replay, so a sampled row's
features are the full table's, bit for bit; every fraud kept; whole wallet-days; hard negatives (rows
the production model would send to review) drawn more often; weights that make the sample stand for
the full history, stratum by stratum.

The Beam job runs on a simulation with delayed labels over two files, 4 shards, writing the full
table and the sample side by side, its hard negatives marked by a published model.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.scoring_fixtures import publish_tiny
from txguard.batch.jobs import JobSpec, JobState, read_status, run_job
from txguard.batch.pipeline import wallet_shards
from txguard.batch.rows import epoch_seconds
from txguard.batch.sampling import (
    WEIGHT_COLUMN,
    hard_marks,
    keep_probability,
    resample_weights,
    sample_weights,
    uniform_of,
)
from txguard.features.wallet import FEATURE_NAMES
from txguard.scoring.loading import open_scorer
from txguard.simulator.core import Simulation
from txguard.training.dataset import first_known

FRACTION, SEED, HARD = 0.2, 7, 0.6


def write_labelled_simulation(folder: Path, days: int, wallets: int, seed: int) -> int:
    """Two JSONL files of a simulation, each fraud row with its `label_time`; returns the row count."""
    sim = Simulation(days=days, wallets=wallets, seed=seed)
    known = first_known(sim.label_events())
    lines = []
    for r in sim:
        row = r.to_row()
        if r.is_fraud and r.tx.transaction_id in known:
            row["label_time"] = datetime.fromtimestamp(known[r.tx.transaction_id], UTC).isoformat()
        lines.append(json.dumps(row) + "\n")
    folder.mkdir(parents=True)
    for k in range(2):
        (folder / f"part-{k}.jsonl").write_text("".join(lines[k::2]))
    return len(lines)


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("batch-sample")
    n = write_labelled_simulation(root / "in", days=12, wallets=400, seed=5)
    publish_tiny(root / "registry")  # its review threshold marks ~10 % of these rows hard
    uri = f"{root / 'registry'}@production"
    status = run_job(JobSpec(input=str(root / "in" / "part-*.jsonl"), output=str(root / "out"), features=True,
                             sample=FRACTION, sample_seed=SEED, sample_model=uri, sample_hard=HARD, shards=4),
                     workers=1)
    assert status.state is JobState.COMPLETED, status.error
    full = pq.read_table(sorted((root / "out").glob("features-*.parquet")))
    sample = pq.read_table(sorted((root / "out").glob("sample-*.parquet")))
    scorer = open_scorer(uri)
    x = np.column_stack([full.column(name).to_numpy() for name in FEATURE_NAMES])
    hard = scorer.runtime.predict(x) >= scorer.thresholds.review
    return {"root": root, "n": n, "status": status, "full": full, "sample": sample, "uri": uri, "hard": hard}


def _by_id(table) -> dict[str, int]:  # noqa: ANN001
    return {t: i for i, t in enumerate(table.column("transaction_id").to_pylist())}


def test_a_sampled_row_has_exactly_the_full_tables_features(job: dict) -> None:
    full, sample = job["full"], job["sample"]
    assert 0 < sample.num_rows < full.num_rows == job["n"]
    rows = [_by_id(full)[t] for t in sample.column("transaction_id").to_pylist()]
    for name in (*FEATURE_NAMES, "timestamp", "wallet_id", "is_fraud", "label_time", "scenario", "line"):
        ours, theirs = sample.column(name).to_numpy(zero_copy_only=False), full.column(name).to_numpy(
            zero_copy_only=False)[rows]
        if ours.dtype.kind == "f":  # bit for bit, NaN included
            assert ours.tobytes() == theirs.tobytes(), name
        else:
            assert ours.tolist() == theirs.tolist(), name


def test_the_sample_is_the_rule_applied_to_the_full_table_whatever_the_shards(job: dict) -> None:
    """Drawn per shard in the job, yet the same rows and weights as the rule on the whole table:
    the draw depends only on (seed, wallet, day)."""
    full, sample = job["full"], job["sample"]
    weights = sample_weights(full.column("wallet_id").to_numpy(zero_copy_only=False), epoch_seconds(full),
                             full.column("is_fraud").to_numpy(), FRACTION, SEED, job["hard"], HARD)
    expected = dict(zip(full.column("transaction_id").to_pylist(), weights.tolist(), strict=True))
    got = dict(zip(sample.column("transaction_id").to_pylist(), sample.column(WEIGHT_COLUMN).to_pylist(), strict=True))
    assert got == {t: w for t, w in expected.items() if w > 0}
    assert job["status"].counts["sampled"] == sample.num_rows
    assert job["status"].sample == {"fraction": FRACTION, "seed": SEED, "hard_model": job["uri"], "hard_fraction": HARD}
    assert read_status(str(job["root"] / "out")).outputs["sample"].endswith("sample-*.parquet")


def test_the_jobs_sample_redrawn_smaller_is_the_jobs_draw_at_the_smaller_chances(job: dict) -> None:
    """`resample_table` on the job's sample (0.2, hard 0.6) at (0.05, hard 0.3): the rows and weights the
    rule keeps from the full table at those chances, the features and the history span as the job wrote them."""
    from txguard.batch.featurize import resample_table, sample_table

    full, sample = job["full"], job["sample"]
    redrawn = resample_table(sample, FRACTION, HARD, 0.05, 0.3, SEED)
    expected = sample_table(full, 0.05, SEED, job["hard"], 0.3)
    assert 0 < redrawn.num_rows < sample.num_rows and redrawn.schema == sample.schema
    order = _by_id(expected)
    rows = [order[t] for t in redrawn.column("transaction_id").to_pylist()]
    assert sorted(rows) == list(range(expected.num_rows))  # the same rows, no more, no fewer
    for name in (WEIGHT_COLUMN, *FEATURE_NAMES):
        ours = redrawn.column(name).to_numpy(zero_copy_only=False)
        theirs = expected.column(name).to_numpy(zero_copy_only=False)[rows]
        assert ours.tobytes() == theirs.tobytes(), name  # bit for bit, NaN included
    # each row keeps the span of the shard the job drew it from
    drawn_from = [_by_id(sample)[t] for t in redrawn.column("transaction_id").to_pylist()]
    for name in ("history_start", "history_end"):
        assert redrawn.column(name).to_pylist() == [sample.column(name)[i].as_py() for i in drawn_from], name


def test_every_fraud_is_kept_with_weight_one_and_wallet_days_stay_whole(job: dict) -> None:
    full, sample = job["full"], job["sample"]
    labelled = full.column("is_fraud").to_numpy() == 1
    assert labelled.sum() > 20
    weight_of = dict(zip(sample.column("transaction_id").to_pylist(), sample.column(WEIGHT_COLUMN).to_pylist(),
                         strict=True))
    ids = full.column("transaction_id").to_pylist()
    assert all(weight_of.get(ids[i]) == 1.0 for i in np.flatnonzero(labelled))
    assert 0.01 < job["hard"][~labelled].mean() < 0.3
    assert set(weight_of.values()) == {1.0, 1.0 / HARD, 1.0 / FRACTION}
    days = (epoch_seconds(full) // 86400).astype(int)
    blocks: dict[tuple[str, int], set[bool]] = {}
    for t, w, d in zip(ids, full.column("wallet_id").to_pylist(), days.tolist(), strict=True):
        blocks.setdefault((w, d), set()).add(t in weight_of)
    assert all(len(kept) == 1 for kept in blocks.values()), "a wallet-day was split"
    # The weighted count stands for the full history.
    assert abs(sum(weight_of.values()) / full.num_rows - 1.0) < 0.1


def test_the_sample_is_split_where_its_full_history_is(job: dict) -> None:
    """Each sample row records its history's first and last times; training splits the sample by them,
    so its cut and label-maturity window are the full table's, and its training and held-out rows are
    the full table's that it kept."""
    from txguard.training.dataset import from_feature_table
    from txguard.training.train import time_split

    out = job["root"] / "out"
    full, sample = from_feature_table(str(out / "features-*.parquet")), from_feature_table(str(out / "sample-*.parquet"))
    assert full.span is None and sample.span == (full.ts.min(), full.ts.max())
    assert (sample.ts.min(), sample.ts.max()) != sample.span  # the draw left out the history's first or last row
    whole, drawn = time_split(full, 0.25), time_split(sample, 0.25)
    assert (drawn.cut, drawn.train_end, drawn.maturity_days) == (whole.cut, whole.train_end, whole.maturity_days)
    assert whole.maturity_days > 0  # estimated from the labels known at the cut, the same frauds on both sides
    kept = np.isin(full.ts, sample.ts)  # times are unique enough here to pair the rows
    assert drawn.train.sum() == (whole.train & kept).sum() and drawn.test.sum() == (whole.test & kept).sum()
    # an older sample (no span columns) is split by its own rows, as before
    assert time_split(replace(sample, span=None), 0.25).cut != whole.cut


def test_the_draw_is_seeded_stratified_by_day_and_unbiased() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    wallets = np.asarray([f"w{i:05d}" for i in rng.integers(0, 20_000, n)], dtype=object)
    ts = rng.uniform(0, 30 * 86400, n)
    fraud = (rng.uniform(size=n) < 0.002).astype(np.int8)
    w = sample_weights(wallets, ts, fraud, 0.05, seed=3)
    assert np.all(w[fraud == 1] == 1.0)
    assert abs(w.sum() / n - 1.0) < 0.03  # Horvitz-Thompson: the weighted count is the full count
    days = (ts // 86400).astype(int)
    per_day = [w[days == d].sum() / (days == d).sum() for d in range(30)]
    assert max(abs(x - 1.0) for x in per_day) < 0.15  # every day keeps its own share
    assert np.array_equal(w, sample_weights(wallets, ts, fraud, 0.05, seed=3))
    other = sample_weights(wallets, ts, fraud, 0.05, seed=4)
    assert not np.array_equal(w, other) and np.array_equal(w[fraud == 1], other[fraud == 1])
    u = uniform_of(wallets[:1000], days[:1000], 3)
    assert u.min() >= 0.0 and u.max() < 1.0


def traffic(seed: int, n: int, wallets: int, fraud_rate: float, hard_rate: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`n` rows over 20 days: wallet ids, epoch seconds, fraud flags and hard marks, drawn at the given rates."""
    rng = np.random.default_rng(seed)
    ids = np.asarray([f"w{i:05d}" for i in rng.integers(0, wallets, n)], dtype=object)
    ts = rng.uniform(0, 20 * 86400, n)
    return ids, ts, (rng.uniform(size=n) < fraud_rate).astype(np.int8), rng.uniform(size=n) < hard_rate


def test_hard_negatives_are_their_own_stratum_and_every_stratum_is_unbiased() -> None:
    """A wallet-day's chance is 1 with a fraud, HARD with a hard row, the fraction otherwise; each kept
    row weighs 1 / that chance, so the weighted count of every stratum is its full count in expectation
    (averaged over seeds here: exact up to the draw's noise), and the rows marked hard are kept more."""
    n = 100_000
    wallets, ts, fraud, hard = traffic(1, n, wallets=10_000, fraud_rate=0.002, hard_rate=0.02)
    chance = keep_probability(wallets, ts, fraud, 0.05, hard, HARD)
    days = (ts // 86400).astype(int)
    block: dict[tuple[str, int], list[int]] = {}
    for i, key in enumerate(zip(wallets.tolist(), days.tolist(), strict=True)):
        block.setdefault(key, []).append(i)
    for rows in list(block.values())[:3000]:
        expected = 1.0 if fraud[rows].any() else HARD if hard[rows].any() else 0.05
        assert np.all(chance[rows] == expected)
    strata = {"fraud": chance == 1.0, "hard": chance == HARD, "rest": chance == 0.05}
    assert sum(m.sum() for m in strata.values()) == n and all(m.sum() > 150 for m in strata.values())
    runs = np.array([sample_weights(wallets, ts, fraud, 0.05, seed, hard, HARD) for seed in range(40)])
    assert np.all(runs[:, strata["fraud"]] == 1.0)
    assert set(np.unique(runs[:, strata["hard"]])) == {0.0, 1.0 / HARD}
    assert set(np.unique(runs[:, strata["rest"]])) == {0.0, 1.0 / 0.05}
    for name, mask in strata.items():
        weighted = runs[:, mask].sum(axis=1).mean()  # the weighted count, averaged over 40 draws
        assert weighted == pytest.approx(mask.sum(), rel=0.02), name
    kept = (runs > 0).mean(axis=0)
    assert kept[strata["hard"]].mean() == pytest.approx(HARD, abs=0.02)
    assert kept[strata["rest"]].mean() == pytest.approx(0.05, abs=0.005)
    # Without a hard mark the rule is the plain one, weight for weight.
    assert np.array_equal(sample_weights(wallets, ts, fraud, 0.05, 3),
                          sample_weights(wallets, ts, fraud, 0.05, 3, np.zeros(n, bool), HARD))


def test_a_sample_redrawn_at_smaller_chances_is_the_draw_at_those_chances_row_for_row() -> None:
    """A 0.5 % sample redrawn from a 4 % one (hard stratum at 20 x each, so 0.8 and 0.1) keeps exactly the rows,
    with exactly the weights, that the draw at 0.5 % keeps from the full table; and so on down."""
    wallets, ts, fraud, hard = traffic(2, 150_000, wallets=15_000, fraud_rate=0.003, hard_rate=0.03)
    for (f, h), (to_f, to_h) in ((0.04, 0.8), (0.005, 0.1)), ((0.1, 1.0), (0.04, 0.8)), ((0.04, 0.8), (0.04, 0.8)):
        big = sample_weights(wallets, ts, fraud, f, SEED, hard, h)
        kept = big > 0
        redrawn = resample_weights(wallets[kept], ts[kept], fraud[kept], big[kept], f, h, to_f, to_h, SEED)
        small = sample_weights(wallets, ts, fraud, to_f, SEED, hard, to_h)
        assert np.all(small[~kept] == 0.0)  # nothing outside the larger sample
        assert np.array_equal(redrawn, small[kept]), (f, to_f)
        assert 0 < (redrawn > 0).sum() <= kept.sum()
    big = sample_weights(wallets, ts, fraud, 0.04, SEED, hard, 0.8)
    kept = big > 0
    args = (wallets[kept], ts[kept], fraud[kept], big[kept], 0.04, 0.8)
    with pytest.raises(ValueError, match="no larger"):
        resample_weights(*args, 0.08, 0.8, SEED)
    with pytest.raises(ValueError, match="none of the sample's chances"):
        resample_weights(*args[:4], 0.05, 0.8, 0.01, 0.2, SEED)
    with pytest.raises(ValueError, match="cannot be told apart"):
        resample_weights(*args[:4], 0.04, 0.04, 0.01, 0.02, SEED)


def test_a_hard_share_marks_the_top_of_each_wallet_shards_scores(job: dict, tmp_path: Path) -> None:
    """With a hard share the hard rows are each wallet shard's top share by the sample model's score (its
    own quantile, the job seeing one shard at a time), wider than the review band here; the draw is the
    same rule on those marks, and the status records the share."""
    full, share, shards = job["full"], 0.25, 4
    status = run_job(JobSpec(input=str(job["root"] / "in" / "part-*.jsonl"), output=str(tmp_path / "out"),
                             sample=FRACTION, sample_seed=SEED, sample_model=job["uri"], sample_hard=HARD,
                             sample_hard_share=share, shards=shards), workers=1)
    assert status.state is JobState.COMPLETED, status.error
    assert status.sample == {"fraction": FRACTION, "seed": SEED, "hard_model": job["uri"], "hard_fraction": HARD,
                             "hard_share": share}
    scorer = open_scorer(job["uri"])
    scores = scorer.runtime.predict(np.column_stack([full.column(name).to_numpy() for name in FEATURE_NAMES]))
    shard = wallet_shards(full, shards)
    hard = np.zeros(full.num_rows, dtype=bool)
    for k in range(shards):
        rows = shard == k
        hard[rows] = hard_marks(scores[rows], scorer.thresholds.review, share)
        assert hard[rows].mean() == pytest.approx(share, abs=0.02)  # ties at the cut aside
    assert hard.sum() > job["hard"].sum()
    weights = sample_weights(full.column("wallet_id").to_numpy(zero_copy_only=False), epoch_seconds(full),
                             full.column("is_fraud").to_numpy(), FRACTION, SEED, hard, HARD)
    sample = pq.read_table(sorted((tmp_path / "out").glob("sample-*.parquet")))
    got = dict(zip(sample.column("transaction_id").to_pylist(), sample.column(WEIGHT_COLUMN).to_pylist(), strict=True))
    expected = dict(zip(full.column("transaction_id").to_pylist(), weights.tolist(), strict=True))
    assert got == {t: w for t, w in expected.items() if w > 0}


def test_hard_marks_are_the_review_band_or_the_top_share() -> None:
    scores = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.6, 0.4, 0.8, 0.0])
    assert hard_marks(scores, 0.65).tolist() == (scores >= 0.65).tolist()
    assert np.flatnonzero(hard_marks(scores, 0.65, 0.2)).tolist() == [0, 8]  # 0.9 and 0.8
    assert hard_marks(scores, 0.65, 1.0).all()
    assert hard_marks(np.array([0.5, 0.5, 0.5, 0.1]), 0.9, 0.25).tolist() == [True, True, True, False]  # ties kept
    assert hard_marks(np.zeros(0), 0.5, 0.1).tolist() == []


def test_a_bad_fraction_is_refused_before_any_work(tmp_path: Path) -> None:
    for fraction, seed, hard in ((0.0 - 0.5, 0, 1.0), (1.5, 0, 1.0), (0.1, -1, 1.0), (0.1, 0, 0.05), (0.1, 0, 1.5)):
        with pytest.raises(ValueError, match="sample"):
            JobSpec(input=str(tmp_path / "x.jsonl"), output=str(tmp_path / "o"), sample=fraction, sample_seed=seed,
                    sample_hard=hard)
    with pytest.raises(ValueError, match="sample model"):
        JobSpec(input=str(tmp_path / "x.jsonl"), output=str(tmp_path / "o"), features=True, sample_model="r@p")
    for share in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="hard share"):
            JobSpec(input=str(tmp_path / "x.jsonl"), output=str(tmp_path / "o"), sample=0.1, sample_model="r@p",
                    sample_hard_share=share)
    with pytest.raises(ValueError, match="sample model"):
        JobSpec(input=str(tmp_path / "x.jsonl"), output=str(tmp_path / "o"), sample=0.1, sample_hard_share=0.05)
